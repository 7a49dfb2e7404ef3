import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_MAX_FRAME_SIZE, encodeFrame, FrameDecoder } from '../../src/rendezvous/framing.ts';
import { FramingStateError, FrameTooLargeError } from '../../src/rendezvous/errors.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('a header over the limit is refused the moment its last byte arrives, before any payload', () => {
  const d = new FrameDecoder();
  d.push(hex('ff')); // a 4-byte header, 1 byte so far: nothing to judge yet
  d.push(hex('ff'));
  d.push(hex('ff'));
  assert.equal(d.buffered, 3);
  // ffffffff = 2^30 - 1 bytes claimed (hbbs would wait for them until its 30 s read timeout).
  assert.throws(() => d.push(hex('ff')), (e) => e instanceof FrameTooLargeError && e.length === 0x3fffffff && e.limit === DEFAULT_MAX_FRAME_SIZE);
  assert.ok(d.buffered <= 4);
});

test('the limit is configurable; exactly the limit passes, one more fails', () => {
  const ok = new FrameDecoder({ maxFrameSize: 100 });
  assert.equal(ok.decode(encodeFrame(Buffer.alloc(100)))[0]!.length, 100);
  const bad = new FrameDecoder({ maxFrameSize: 100 });
  assert.throws(() => bad.push(encodeFrame(Buffer.alloc(101)).subarray(0, 2)), FrameTooLargeError);
  assert.equal(new FrameDecoder({ maxFrameSize: 0 }).decode(hex('00'))[0]!.length, 0);
  assert.throws(() => new FrameDecoder({ maxFrameSize: -1 }), RangeError);
  assert.throws(() => new FrameDecoder({ maxFrameSize: 2 ** 30 }), RangeError);
});

test('the default limit is 256 KiB (upstream MAX_PREALLOCATED_PAYLOAD_LEN)', () => {
  assert.equal(DEFAULT_MAX_FRAME_SIZE, 262144);
  assert.equal(new FrameDecoder().decode(encodeFrame(Buffer.alloc(262144)))[0]!.length, 262144);
  assert.throws(() => new FrameDecoder().push(encodeFrame(Buffer.alloc(262145))), FrameTooLargeError);
});

test('a frame over the limit later in the same chunk fails when the decoder reaches it', () => {
  const d = new FrameDecoder({ maxFrameSize: 8 });
  const input = Buffer.concat([encodeFrame(hex('01')), encodeFrame(Buffer.alloc(9))]);
  d.push(input);
  assert.deepEqual(Buffer.from(d.next()!).toString('hex'), '01');
  assert.throws(() => d.next(), FrameTooLargeError);
});

test('after an error, every call throws the same error: a byte stream cannot be resynchronised', () => {
  const d = new FrameDecoder({ maxFrameSize: 1 });
  let first: unknown;
  try { d.push(hex('08')); } catch (e) { first = e; }
  assert.ok(first instanceof FrameTooLargeError);
  assert.throws(() => d.push(hex('00')), (e) => e === first);
  assert.throws(() => d.next(), (e) => e === first);
});

test('takeRest: the bytes behind the first frame, for the switch to a raw relay', () => {
  const d = new FrameDecoder();
  d.push(Buffer.concat([encodeFrame(Buffer.from('first')), hex('0123456789')]));
  assert.equal(Buffer.from(d.next()!).toString(), 'first');
  // 01 would be the header of a frame; in raw mode it is just a byte of the stream.
  assert.equal(d.takeRest().toString('hex'), '0123456789');
  assert.throws(() => d.push(hex('00')), FramingStateError);
});

test('frames are copies: mutating the input after decoding does not change them', () => {
  const input = encodeFrame(Buffer.from('abc'));
  const [f] = new FrameDecoder().decode(input);
  input.fill(0);
  assert.equal(Buffer.from(f!).toString(), 'abc');
});
