import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ReplayBuffer } from '../../src/link/replay-buffer.ts';

test('a run of small writes is held in slabs, not as a Buffer each: a window of 6-byte frames costs bytes, not objects', () => {
  const rb = new ReplayBuffer();
  const cls = Buffer.from('000601020304', 'hex');
  const n = Math.floor((1024 * 1024) / 6);
  for (let i = 0; i < n; i++) rb.append(cls);
  assert.equal(rb.size, n * 6);
  // 16 KiB slabs, each followed by one write held as it was (the next slab starts with it).
  assert.ok(rb.chunkCount <= 2 * Math.ceil((n * 6) / (16 * 1024)) + 2, `${rb.chunkCount} buffers for ${n} writes`);
  const back = Buffer.concat(rb.pieces(rb.acked + 6 * 1000, 60));
  assert.deepEqual(back, Buffer.concat(Array.from({ length: 10 }, () => cls)));
  // Acknowledging part of a slab and writing on extends the same slab.
  rb.ack(rb.end - 3);
  rb.append(cls);
  assert.equal(rb.chunkCount, 1);
  assert.deepEqual(Buffer.concat(rb.pieces(rb.acked, 100)), Buffer.concat([cls.subarray(3), cls]));
});

test('a DAT header followed by its payload is held as written: the data path copies nothing', () => {
  const rb = new ReplayBuffer();
  const payload = Buffer.alloc(8185, 7);
  for (let i = 0; i < 100; i++) {
    rb.append(Buffer.from([0x9f, 0xff, 0, 0, 0, 1]));
    rb.append(payload);
  }
  assert.equal(rb.chunkCount, 200);
  const pieces = rb.pieces(6, 8185);
  assert.equal(pieces.length, 1);
  assert.equal(pieces[0]!.buffer, payload.buffer, 'the payload is a view of the caller\'s buffer, not a copy');
});

test('property: small and large writes mixed, acknowledged and read back from anywhere (a resume reads from further back), give back exactly the bytes written', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('small' as const), n: fc.integer({ min: 1, max: 40 }) }),
    fc.record({ kind: fc.constant('large' as const), n: fc.integer({ min: 513, max: 3000 }) }),
    fc.record({ kind: fc.constant('ack' as const), f: fc.double({ min: 0, max: 1, noNaN: true }) }),
    fc.record({ kind: fc.constant('read' as const), f: fc.double({ min: 0, max: 1, noNaN: true }), max: fc.integer({ min: 0, max: 5000 }) }),
  );
  fc.assert(fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
    const rb = new ReplayBuffer();
    const all: number[] = [];
    for (const o of ops) {
      if (o.kind === 'small' || o.kind === 'large') {
        const b = Buffer.from(Array.from({ length: o.n }, (_, i) => (all.length * 7 + i) & 0xff));
        rb.append(b);
        all.push(...b);
      } else if (o.kind === 'ack') {
        rb.ack(rb.acked + Math.floor(o.f * rb.size));
      } else {
        const from = rb.acked + Math.floor(o.f * rb.size);
        assert.deepEqual([...Buffer.concat(rb.pieces(from, o.max))], all.slice(from, from + o.max));
      }
    }
  }), { numRuns: 500 });
});
