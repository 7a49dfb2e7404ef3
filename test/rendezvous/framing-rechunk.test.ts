import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodeFrame, FrameDecoder } from '../../src/rendezvous/framing.ts';

function decodeSplit(input: Buffer, cuts: number[]): Buffer[] {
  const d = new FrameDecoder();
  const out: Buffer[] = [];
  let at = 0;
  for (const c of [...cuts.filter((x) => x > 0 && x < input.length)].sort((a, b) => a - b).concat(input.length)) {
    for (const f of d.decode(input.subarray(at, c))) out.push(Buffer.from(f));
    at = c;
  }
  assert.equal(d.buffered, 0);
  return out;
}

// Lengths around every header-size boundary (63/64, 16383/16384) plus small ones.
const payload = fc.oneof(
  fc.uint8Array({ maxLength: 80 }),
  fc.integer({ min: 16300, max: 16500 }).map((n) => new Uint8Array(n).fill(n & 0xff)),
);

test('property: encode then decode gives the payloads back, however the bytes are split', () => {
  fc.assert(fc.property(fc.array(payload, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 40 }), (payloads, cuts) => {
    const input = Buffer.concat(payloads.map((p) => encodeFrame(p)));
    const scaled = cuts.map((c) => (input.length > 0 ? c % input.length : 0));
    assert.deepEqual(decodeSplit(input, scaled), payloads.map((p) => Buffer.from(p)));
  }), { numRuns: 300 });
});

test('byte by byte: a stream of many frames fed one byte at a time', () => {
  const payloads = Array.from({ length: 50 }, (_, i) => Buffer.alloc(i * 7, i));
  payloads.push(Buffer.alloc(70000, 7)); // 3-byte header
  const input = Buffer.concat(payloads.map((p) => encodeFrame(p)));
  const d = new FrameDecoder();
  const out: Buffer[] = [];
  for (let i = 0; i < input.length; i++) for (const f of d.decode(input.subarray(i, i + 1))) out.push(Buffer.from(f));
  assert.deepEqual(out, payloads);
});

test('property: buffered never exceeds one partial frame plus the last push', () => {
  fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 10 }), fc.integer({ min: 1, max: 64 }), (payloads, step) => {
    const input = Buffer.concat(payloads.map((p) => encodeFrame(p)));
    const d = new FrameDecoder({ maxFrameSize: 300 });
    for (let at = 0; at < input.length; at += step) {
      d.decode(input.subarray(at, at + step));
      assert.ok(d.buffered < 300 + 4, `buffered ${d.buffered}`);
    }
    assert.equal(d.buffered, 0);
  }));
});
