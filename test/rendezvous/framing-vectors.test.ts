import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeFrame, encodeFrameHeader, FrameDecoder, MAX_FRAME_ENCODABLE } from '../../src/rendezvous/framing.ts';
import { FrameTooLargeError } from '../../src/rendezvous/errors.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// FACTS.md §2 (line 32), from hbb_common bytes_codec.rs:118-143: the shortest header per length.
const HEADER_VECTORS: [number, string][] = [
  [0, '00'], [63, 'fc'], [64, '0101'], [16383, 'fdff'], [16384, '020001'], [4194303, 'feffff'], [4194304, '03000001'],
];

test('encoder: the shortest header at every boundary (FACTS §2 vectors)', () => {
  for (const [len, h] of HEADER_VECTORS) assert.equal(encodeFrameHeader(len).toString('hex'), h, `length ${len}`);
  assert.equal(encodeFrameHeader(MAX_FRAME_ENCODABLE).toString('hex'), 'ffffffff');
});

test('decoder: each boundary header gives back its length', () => {
  for (const [len, h] of HEADER_VECTORS) {
    const d = new FrameDecoder({ maxFrameSize: MAX_FRAME_ENCODABLE });
    const frames = d.decode(Buffer.concat([hex(h), Buffer.alloc(len, 0x5a)]));
    assert.equal(frames.length, 1, `length ${len}`);
    assert.equal(frames[0]!.length, len);
    assert.equal(d.buffered, 0);
  }
});

test('small frames by hand: 3 payload bytes under a 1-byte header; a 2-byte header frame', () => {
  assert.equal(encodeFrame(hex('0a0b0c')).toString('hex'), '0c' + '0a0b0c'); // 3 << 2
  const p = Buffer.alloc(100, 1);
  assert.equal(encodeFrame(p).subarray(0, 2).toString('hex'), '9101'); // 100 << 2 | 1 = 0x0191 LE
  assert.deepEqual(new FrameDecoder().decode(hex('0c0a0b0c 0401 9101')).map((f) => Buffer.from(f).toString('hex')), ['0a0b0c', '01']);
});

test('decoder accepts non-minimal headers: 1500 is a 5-byte frame, 060000 a 1-byte one (FACTS §2, line 33)', () => {
  const frames = new FrameDecoder().decode(hex('1500 0102030405 060000 ff 03000000'));
  assert.deepEqual(frames.map((f) => Buffer.from(f).toString('hex')), ['0102030405', 'ff', '']);
});

test('the empty frame 00 is a frame with an empty payload (the TCP heartbeat, FACTS §2)', () => {
  const frames = new FrameDecoder().decode(hex('00 00'));
  assert.deepEqual(frames.map((f) => f.length), [0, 0]);
  assert.equal(encodeFrame(new Uint8Array(0)).toString('hex'), '00');
});

test('encoder refuses what a 30-bit length cannot say, or what the given limit forbids', () => {
  assert.throws(() => encodeFrameHeader(MAX_FRAME_ENCODABLE + 1), FrameTooLargeError);
  assert.throws(() => encodeFrame(Buffer.alloc(10), 9), (e) => e instanceof FrameTooLargeError && e.code === 'RDV_FRAME_TOO_LARGE' && e.length === 10 && e.limit === 9);
  assert.throws(() => encodeFrameHeader(-1), RangeError);
});
