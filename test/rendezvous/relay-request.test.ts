import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeRendezvous } from '../../src/rendezvous/messages.ts';
import { checkRelayRequest } from '../../src/rendezvous/relay-request.ts';
import { handRequestFrame, requestFrame } from '../helpers/relay.ts';

test('the hand-written RequestRelay frame is byte for byte what the codec writes', () => {
  // 2c | 92 01 08 | 12 03 "abc" | 32 01 "K"
  assert.equal(handRequestFrame('abc', 'K').toString('hex'), '2c9201081203616263' + '32014b');
  assert.deepEqual(handRequestFrame('abc', 'K'), requestFrame('abc', 'K'));
});

test('a RequestRelay with a uuid is accepted, with the id it names', () => {
  const payload = encodeRendezvous({ union: { case: 'requestRelay', value: { uuid: 'u-1', id: '123456789', licenceKey: 'k' } } });
  assert.deepEqual(checkRelayRequest(payload, 'k'), { ok: true, uuid: 'u-1', id: '123456789' });
  assert.deepEqual(checkRelayRequest(payload, null), { ok: true, uuid: 'u-1', id: '123456789' });
  // Hand-written payload (frame minus its 1-byte header), so the decoder is checked independently.
  assert.deepEqual(checkRelayRequest(handRequestFrame('abc', 'K').subarray(1), 'K'), { ok: true, uuid: 'abc', id: '' });
});

test('refusals: key mismatch (verbatim compare), empty uuid, another message, not protobuf', () => {
  const hand = handRequestFrame('abc', 'K').subarray(1);
  assert.deepEqual(checkRelayRequest(hand, 'k'), { ok: false, reason: 'key_mismatch' });
  assert.deepEqual(checkRelayRequest(handRequestFrame('abc', '').subarray(1), 'K'), { ok: false, reason: 'key_mismatch' });
  assert.deepEqual(checkRelayRequest(Buffer.from('92010232014b', 'hex'), 'K'), { ok: false, reason: 'no_uuid' });
  assert.deepEqual(checkRelayRequest(Buffer.from('92010232014b', 'hex'), null), { ok: false, reason: 'no_uuid' });
  // RegisterPeer{id:"a"} (field 6: 32 03 0a 01 61); the empty message (no union) too.
  assert.deepEqual(checkRelayRequest(Buffer.from('32030a0161', 'hex'), null), { ok: false, reason: 'not_request_relay' });
  assert.deepEqual(checkRelayRequest(Buffer.alloc(0), null), { ok: false, reason: 'not_request_relay' });
  assert.deepEqual(checkRelayRequest(Buffer.from('ffffffff', 'hex'), null), { ok: false, reason: 'malformed' });
});
