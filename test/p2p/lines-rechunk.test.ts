import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { P2pProtocolError } from '../../src/p2p/errors.ts';
import { LineDecoder } from '../../src/p2p/lines.ts';

test('property: the same lines however the bytes are split', () => {
  const line = fc.string({ maxLength: 60, unit: 'binary' }).map((s) => s.replaceAll('\n', ' '));
  fc.assert(fc.property(fc.array(line, { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 20 }), (lines, cuts) => {
    const input = Buffer.from(lines.map((l) => `${l}\n`).join(''), 'utf8');
    const d = new LineDecoder(1024);
    const out: string[] = [];
    let at = 0;
    for (const c of cuts.map((x) => (input.length ? x % input.length : 0)).sort((a, b) => a - b).concat(input.length)) {
      out.push(...d.push(input.subarray(at, c)));
      at = c;
    }
    assert.deepEqual(out, lines);
    assert.equal(d.buffered, 0);
  }), { numRuns: 300 });
});

test('an overlong line is an error as soon as the limit is passed, without a newline; the decoder stays failed', () => {
  const d = new LineDecoder(10);
  assert.deepEqual(d.push(Buffer.from('0123456789')), []);
  assert.throws(() => d.push(Buffer.from('a')), (e: unknown) => e instanceof P2pProtocolError && /longer than 10 bytes/.test(e.message));
  assert.throws(() => d.push(Buffer.from('\n')), /used after an error/);
  // Exactly at the limit, then a newline: fine. One past it inside a chunk with a newline: error.
  assert.deepEqual(new LineDecoder(3).push(Buffer.from('abc\nde\n')), ['abc', 'de']);
  assert.throws(() => new LineDecoder(3).push(Buffer.from('abcd\n')), /longer than 3 bytes/);
  const split = new LineDecoder(3);
  split.push(Buffer.from('ab'));
  assert.throws(() => split.push(Buffer.from('cd\n')), /longer than 3 bytes/);
});
