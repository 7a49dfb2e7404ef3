import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Decoder, encodeBigDat, encodeDat, encodeDatHeaders, FrameType, type Frame } from '../../src/protocol/index.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function decodeAll(chunks: Buffer[], allowBig: boolean): Frame[] {
  const d = new Decoder();
  d.allowBig = allowBig;
  const out: Frame[] = [];
  for (const c of chunks) d.push(c, (f) => out.push(f));
  assert.equal(d.buffered, 0);
  return out;
}

test('BIG DAT frame: the wire bytes (hand-written), and 64 KiB in one frame', () => {
  // 10 1 00000 | 00000000 00001010 = L 10 (7-byte header + 3 bytes) | session 0x01020304 | "abc"
  assert.deepEqual(encodeBigDat(0x01020304, Buffer.from('abc')), hex('a0 00 0a 01020304 616263'));
  // 65536 bytes: L = 65543 = 0x010007 → byte 0 is 0xa0 | 0x01.
  const big = encodeBigDat(7, Buffer.alloc(65536, 0x55));
  assert.deepEqual(big.subarray(0, 7), hex('a1 00 07 00000007'));
  const [f] = decodeAll([big], true);
  assert.equal(f?.type, FrameType.DAT);
  assert.equal(f.type === FrameType.DAT && f.session, 7);
  assert.equal(f.type === FrameType.DAT && f.data.length, 65536);
  assert.throws(() => encodeBigDat(1, Buffer.alloc(65537)), /1-65536/);
  assert.throws(() => encodeBigDat(1, Buffer.alloc(0)), /1-65536/);
});

test('BIG: a frame split across reads is delivered in pieces as they arrive; nothing is buffered', () => {
  const f = encodeBigDat(0x0a0b0c0d, Buffer.alloc(65536, 1));
  const d = new Decoder();
  d.allowBig = true;
  const pieces: number[] = [];
  for (const [a, b] of [[0, 2], [2, 5], [5, 40_000], [40_000, 65_543]] as const) {
    d.push(f.subarray(a, b), (x) => { assert.equal(x.type === FrameType.DAT && x.session, 0x0a0b0c0d); pieces.push(x.type === FrameType.DAT ? x.data.length : -1); });
    assert.ok(d.buffered <= 7, `at most the header is held (${d.buffered})`);
  }
  assert.deepEqual(pieces, [40_000 - 7, 65_543 - 40_000]);
});

test('BIG: the limit is checked from the three length bytes, before anything is buffered', () => {
  const d = new Decoder();
  d.allowBig = true;
  // L = 65544 (one byte too many): refused as soon as the third header byte is known.
  assert.throws(() => d.push(hex('a1 00 08'), () => undefined), (e: Error & { code?: string }) => e.code === 'DK_FRAME_LENGTH');
  const d2 = new Decoder();
  d2.allowBig = true;
  assert.throws(() => d2.push(hex('a0 00 07 00000001'), () => undefined), (e: Error & { code?: string }) => e.code === 'DK_FRAME_LENGTH', 'an empty BIG frame');
});

test('before BIG is negotiated, R is ignored as the seed says; after, it means BIG only on DAT', () => {
  const seedDat = encodeDat(9, Buffer.from('hi'));
  seedDat[0] = seedDat[0]! | 0x20;
  assert.deepEqual(decodeAll([seedDat], false).map((f) => f.type === FrameType.DAT && f.data.toString()), ['hi']);
  const cls = hex('20 06 00000005'); // CLS with R set
  assert.deepEqual(decodeAll([cls], true), [{ type: FrameType.CLS, session: 5 }]);
});

test('property: BIG and seed frames mixed, split anywhere, decode to the same data', () => {
  fc.assert(fc.property(
    fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 70_000 })), { minLength: 1, maxLength: 6 }),
    fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 50 }),
    (frames, cuts) => {
      const parts: Buffer[] = [];
      const want: number[] = [];
      for (const [big, n] of frames) {
        const data = Buffer.alloc(n, n & 0xff);
        const headers = encodeDatHeaders(3, n, big);
        const [size, max] = big ? [7, 65536] : [6, 8185];
        for (let off = 0, i = 0; off < n; off += max, i++) {
          parts.push(headers.subarray(i * size, (i + 1) * size), data.subarray(off, off + max));
          want.push(Math.min(max, n - off));
        }
      }
      const all = Buffer.concat(parts);
      const chunks: Buffer[] = [];
      let off = 0;
      for (let i = 0; off < all.length; i++) {
        const n = cuts[i % cuts.length]!;
        chunks.push(all.subarray(off, off + n));
        off += n;
      }
      // Seed frames come out whole; a BIG frame's payload may come in pieces: the same bytes, in order.
      const got = decodeAll(chunks, true);
      assert.ok(got.every((f) => f.type === FrameType.DAT && f.session === 3));
      assert.deepEqual(Buffer.concat(got.map((f) => (f.type === FrameType.DAT ? f.data : Buffer.alloc(0)))), Buffer.concat(want.length ? frames.map(([, n]) => Buffer.alloc(n, n & 0xff)) : []));
      if (frames.every(([big]) => !big)) assert.deepEqual(got.map((f) => (f.type === FrameType.DAT ? f.data.length : -1)), want, 'seed frames: the same frames however split');
    },
  ), { numRuns: 200 });
});
