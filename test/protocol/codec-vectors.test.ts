import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Decoder, FrameType, ProtocolError, encodeCls, encodeCmd, encodeDat, encodeDatHeaders, encodeOpn, ipToBytes,
  HEADER_SIZE, MAX_DAT_PAYLOAD, type Frame,
} from '../../src/protocol/index.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
function decodeAll(b: Buffer): Frame[] {
  const out: Frame[] = [];
  new Decoder().push(b, (f) => out.push(f));
  return out;
}

test('CLS vector: type 00, L=6, session BE', () => {
  const b = encodeCls(0x01020304);
  assert.equal(b.toString('hex'), '000601020304');
  assert.deepEqual(decodeAll(b), [{ type: FrameType.CLS, session: 0x01020304 }]);
});

test('OPN vectors: IPv4 (L=12) and IPv6 (L=24)', () => {
  const v4 = encodeOpn(0xdeadbeef, 22, ipToBytes('192.168.1.9'));
  assert.equal(v4.toString('hex'), '400c' + 'deadbeef' + '0016' + 'c0a80109');
  const v6 = encodeOpn(7, 3389, ipToBytes('::1'));
  assert.equal(v6.toString('hex'), '4018' + '00000007' + '0d3d' + '0'.repeat(31) + '1');
  const [f4, f6] = decodeAll(Buffer.concat([v4, v6]));
  assert.equal(f4?.type, FrameType.OPN);
  assert.equal(f6?.type, FrameType.OPN);
  if (f4?.type === FrameType.OPN) assert.deepEqual([f4.port, Buffer.from(f4.address).toString('hex')], [22, 'c0a80109']);
});

test('DAT vector and the 13-bit length across both header bytes', () => {
  assert.equal(encodeDat(1, Buffer.from('hi')).toString('hex'), '8008' + '00000001' + '6869');
  const max = encodeDat(2, Buffer.alloc(MAX_DAT_PAYLOAD, 0xab));
  assert.equal(max.length, 8191);
  assert.equal(max.subarray(0, 2).toString('hex'), '9fff'); // 10 0 11111 11111111
  const [f] = decodeAll(max);
  assert.ok(f?.type === FrameType.DAT && f.data.length === 8185);
});

test('CMD vector: PING is c007 00000000 00', () => {
  assert.equal(encodeCmd(0, 0).toString('hex'), 'c00700000000' + '00');
  assert.equal(encodeCmd(0x11223344, 1, hex('0016')).toString('hex'), 'c009' + '11223344' + '01' + '0016');
});

test('encodeDatHeaders splits at 8185 payload bytes: headers and payload slices make the frames', () => {
  const data = Buffer.from(Array.from({ length: 20000 }, (_, i) => i % 251));
  const headers = encodeDatHeaders(9, data.length);
  assert.equal(headers.length, 3 * HEADER_SIZE);
  const wire: Buffer[] = [];
  for (let i = 0; i < 3; i++) wire.push(headers.subarray(i * HEADER_SIZE, (i + 1) * HEADER_SIZE), data.subarray(i * 8185, (i + 1) * 8185));
  const frames = decodeAll(Buffer.concat(wire));
  assert.deepEqual(frames.map((f) => (f.type === FrameType.DAT ? [f.session, f.data.length] : -1)), [[9, 8185], [9, 8185], [9, 3630]]);
  assert.deepEqual(Buffer.concat(frames.map((f) => (f.type === FrameType.DAT ? f.data : Buffer.alloc(0)))), data);
});

test('the reserved bit is ignored on receive', () => {
  const b = encodeCls(5);
  b[0] = b[0]! | 0x20;
  assert.deepEqual(decodeAll(b), [{ type: FrameType.CLS, session: 5 }]);
});

const bad: [string, string, string][] = [
  ['L below header', '0005 00000001', 'DK_FRAME_LENGTH'],
  ['L zero', '0000', 'DK_FRAME_LENGTH'],
  ['CLS with payload', '0007 00000001 00', 'DK_FRAME_LENGTH'],
  ['OPN with 3-byte address', '400b 00000001 0016 010203', 'DK_FRAME_LENGTH'],
  ['CMD without command byte', 'c006 00000000', 'DK_FRAME_LENGTH'],
];
for (const [name, h, code] of bad) {
  test(`rejects ${name} with a typed error as soon as the header is known`, () => {
    // Only the two length bytes are needed to reject: the rest is never buffered.
    const d = new Decoder();
    assert.throws(() => d.push(hex(h).subarray(0, 2), () => undefined), (e: unknown) => e instanceof ProtocolError && e.code === code);
    assert.throws(() => d.push(hex('00'), () => undefined), ProtocolError, 'the decoder stays failed');
  });
}
