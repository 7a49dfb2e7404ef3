import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  Decoder, encodeFrame, FrameType, MAX_CMD_PARAMS, MAX_DAT_PAYLOAD, type Frame,
} from '../../src/protocol/index.ts';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  u32.map((session) => ({ type: FrameType.CLS, session })),
  fc.tuple(u32, fc.integer({ min: 0, max: 65535 }), fc.oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 16, maxLength: 16 })))
    .map(([session, port, address]) => ({ type: FrameType.OPN, session, port, address })),
  fc.tuple(u32, fc.uint8Array({ maxLength: MAX_DAT_PAYLOAD }))
    .map(([session, d]) => ({ type: FrameType.DAT, session, data: Buffer.from(d) })),
  fc.tuple(u32, fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: MAX_CMD_PARAMS }))
    .map(([id, command, p]) => ({ type: FrameType.CMD, id, command, params: Buffer.from(p) })),
);

function norm(f: Frame): unknown {
  switch (f.type) {
    case FrameType.OPN: return { ...f, address: Buffer.from(f.address).toString('hex') };
    case FrameType.DAT: return { ...f, data: f.data.toString('hex') };
    case FrameType.CMD: return { ...f, params: f.params.toString('hex') };
    default: return f;
  }
}

function splitAt(b: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((a, z) => a - z);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) { out.push(b.subarray(prev, p)); prev = p; }
  out.push(b.subarray(prev));
  return out;
}

test('property: encode then decode, under any chunking, gives the same frames', () => {
  fc.assert(fc.property(fc.array(frameArb, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 40 }), (frames, cuts) => {
    const wire = Buffer.concat(frames.map(encodeFrame));
    const got: Frame[] = [];
    const d = new Decoder();
    for (const piece of splitAt(wire, cuts)) d.push(piece, (f) => got.push(f));
    assert.deepEqual(got.map(norm), frames.map(norm));
    assert.equal(d.buffered, 0);
  }), { numRuns: 300 });
});

test('one byte at a time yields the same frames as one chunk', () => {
  const frames: Frame[] = [];
  for (let i = 0; i < 50; i++) frames.push({ type: FrameType.DAT, session: i, data: randomBytes(i * 163) });
  const wire = Buffer.concat(frames.map(encodeFrame));
  const got: Frame[] = [];
  const d = new Decoder();
  for (let i = 0; i < wire.length; i++) d.push(wire.subarray(i, i + 1), (f) => got.push(f));
  assert.deepEqual(got.map(norm), frames.map(norm));
});

test('decoded frames do not alias later input (partial frames are copied)', () => {
  const a = encodeFrame({ type: FrameType.DAT, session: 1, data: Buffer.from('abcdef') });
  const chunk = Buffer.from(a);
  const got: Frame[] = [];
  const d = new Decoder();
  d.push(chunk.subarray(0, 3), (f) => got.push(f));
  d.push(chunk.subarray(3), (f) => got.push(f));
  chunk.fill(0);
  assert.ok(got[0]?.type === FrameType.DAT && got[0].data.toString() === 'abcdef');
});
