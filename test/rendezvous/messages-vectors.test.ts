import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeIdPk, decodeRendezvous, encodeIdPk, encodeRendezvous } from '../../src/rendezvous/messages.ts';
import { MessageDecodeError } from '../../src/rendezvous/errors.ts';
import { NatType, RegisterPkResponse_Result } from '../../src/rendezvous/gen/rendezvous_pb.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// Every vector below is written by hand from the protobuf wire format: a tag is a varint of
// (field number << 3 | wire type), wire type 0 = varint, 2 = length-delimited (length varint,
// then the bytes). RendezvousMessage's union fields are numbered 6-28 (rendezvous.proto).

test('RegisterPeer{id:"123456789", serial:0}: field 6, serial omitted as a proto3 default', () => {
  // 32 = 6<<3|2; 0b = 11 bytes; 0a = 1<<3|2, 09 = 9 bytes of ASCII "123456789".
  const wire = '32 0b 0a 09 313233343536373839';
  assert.equal(toHex(encodeRendezvous({ union: { case: 'registerPeer', value: { id: '123456789', serial: 0 } } })), wire.replace(/ /g, ''));
  const m = decodeRendezvous(hex(wire));
  assert.equal(m.union.case, 'registerPeer');
  assert.deepEqual(m.union.case === 'registerPeer' && [m.union.value.id, m.union.value.serial], ['123456789', 0]);
  // serial 3: + 10 03 (2<<3|0, varint 3), 13 bytes inside.
  const m3 = decodeRendezvous(hex('32 0d 0a 09 313233343536373839 1003'));
  assert.equal(m3.union.case === 'registerPeer' && m3.union.value.serial, 3);
});

test('RegisterPkResponse{result: OK}: field 16 (tag 130 = varint 82 01), an empty submessage', () => {
  assert.equal(toHex(encodeRendezvous({ union: { case: 'registerPkResponse', value: { result: RegisterPkResponse_Result.OK } } })), '820100');
  const m = decodeRendezvous(hex('82 01 00'));
  assert.ok(m.union.case === 'registerPkResponse' && m.union.value.result === RegisterPkResponse_Result.OK);
  // UUID_MISMATCH = 2, keep_alive = 30: 08 02, 10 1e.
  assert.equal(toHex(encodeRendezvous({ union: { case: 'registerPkResponse', value: { result: RegisterPkResponse_Result.UUID_MISMATCH, keepAlive: 30 } } })), '820104' + '0802' + '101e');
});

test('PunchHoleRequest{id, nat_type: ASYMMETRIC, licence_key, version}: field 8', () => {
  // 42 = 8<<3|2, 0x19 = 25 bytes: id (11) + 10 01 (2) + 1a 03 "abc" (5) + 32 05 "1.4.9" (7).
  const wire = '42 19 0a09313233343536373839 1001 1a03616263 3205312e342e39';
  const init = { id: '123456789', natType: NatType.ASYMMETRIC, licenceKey: 'abc', version: '1.4.9' };
  assert.equal(toHex(encodeRendezvous({ union: { case: 'punchHoleRequest', value: init } })), wire.replace(/ /g, ''));
  const m = decodeRendezvous(hex(wire));
  assert.ok(m.union.case === 'punchHoleRequest');
  assert.deepEqual([m.union.value.id, m.union.value.natType, m.union.value.licenceKey, m.union.value.version, m.union.value.connType], ['123456789', 1, 'abc', '1.4.9', 0]);
});

test('a oneof member is sent even when it is the default: PunchHoleResponse nat_type = 0 (FACTS §10)', () => {
  // 5a = 11<<3|2; 0a 0a + 10 mangled bytes (FACTS §3 vector 1.2.3.4:5678); 28 00 = field 5 varint 0.
  const wire = '5a 0e 0a0a2e160000000002040608 2800';
  const bytes = encodeRendezvous({ union: { case: 'punchHoleResponse', value: { socketAddr: hex('2e160000000002040608'), union: { case: 'natType', value: NatType.UNKNOWN_NAT } } } });
  assert.equal(toHex(bytes), wire.replace(/ /g, ''));
  const m = decodeRendezvous(hex(wire));
  assert.ok(m.union.case === 'punchHoleResponse' && m.union.value.union.case === 'natType' && m.union.value.union.value === 0);
});

test('a union submessage with no fields is 3a 00 (RegisterPeerResponse{request_pk: false})', () => {
  assert.equal(toHex(encodeRendezvous({ union: { case: 'registerPeerResponse', value: {} } })), '3a00');
  const m = decodeRendezvous(hex('3a 02 1001'));
  assert.ok(m.union.case === 'registerPeerResponse' && m.union.value.requestPk);
});

test('OnlineResponse{states: 0x80}: a two-byte tag (24<<3|2 = 194 = c2 01)', () => {
  assert.equal(toHex(encodeRendezvous({ union: { case: 'onlineResponse', value: { states: hex('80') } } })), 'c201030a0180');
});

test('the empty payload is a message with no case; unknown fields are skipped and kept', () => {
  assert.equal(decodeRendezvous(new Uint8Array(0)).union.case, undefined);
  // RegisterPeer with an extra field 15 (78 = 15<<3|0, value 01) a newer client might send.
  const m = decodeRendezvous(hex('32 0d 0a 09 313233343536373839 7801'));
  assert.ok(m.union.case === 'registerPeer' && m.union.value.id === '123456789');
  assert.equal(toHex(encodeRendezvous(m)), '320d0a093132333435363738397801');
});

test('IdPk{id, pk}: 0a len id, 12 20 + 32 bytes (message.proto:38)', () => {
  const pk = Buffer.alloc(32, 0x11);
  const wire = '0a09313233343536373839' + '1220' + '11'.repeat(32);
  assert.equal(toHex(encodeIdPk({ id: '123456789', pk })), wire);
  const back = decodeIdPk(hex(wire));
  assert.deepEqual([back.id, Buffer.from(back.pk)], ['123456789', pk]);
});

test('malformed bytes give MessageDecodeError and nothing else', () => {
  const bad: [string, string][] = [
    ['32 0b 0a 09 3132', 'truncated submessage'],
    ['0f', 'field 1 with wire type 7'],
    ['32 03 0a 01 ff', 'invalid UTF-8 in a string field'],
    ['ffffffffffffffffffffff', 'an over-long varint'],
    ['32', 'a tag and no length'],
    ['00', 'field number 0'],
  ];
  for (const [h, why] of bad) {
    assert.throws(() => decodeRendezvous(hex(h)), (e) => e instanceof MessageDecodeError && e.code === 'RDV_MESSAGE_DECODE', why);
  }
  assert.throws(() => decodeIdPk(hex('0a 05 31')), MessageDecodeError);
});
