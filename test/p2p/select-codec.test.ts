import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { P2pProtocolError } from '../../src/p2p/errors.ts';
import { SELECT_BYTES, decodeSelect, encodeSelect } from '../../src/p2p/select.ts';

const token = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

test('vectors: SELECT and ACK frames', () => {
  assert.equal(encodeSelect('select', token).toString('hex'), '444b503101' + '00112233445566778899aabbccddeeff');
  assert.equal(encodeSelect('ack', token).toString('hex'), '444b503102' + '00112233445566778899aabbccddeeff');
  assert.deepEqual(decodeSelect(encodeSelect('ack', token)), { kind: 'ack', token });
});

test('bad frames are a P2pProtocolError: length, magic, kind, token size', () => {
  const good = encodeSelect('select', token);
  const bad = (b: Uint8Array, re: RegExp): void => assert.throws(() => decodeSelect(b), (e: unknown) => e instanceof P2pProtocolError && e.code === 'DK_P2P_PROTOCOL' && re.test(e.message));
  bad(good.subarray(0, 20), /must be 21 bytes/);
  bad(Buffer.concat([good, Buffer.alloc(1)]), /must be 21 bytes/);
  bad(Buffer.concat([Buffer.from('HTTP'), good.subarray(4)]), /bad magic/);
  const k = Buffer.from(good);
  k[4] = 3;
  bad(k, /unknown kind 3/);
  assert.throws(() => encodeSelect('select', Buffer.alloc(15)), /16 bytes/);
});

test('property: any 21 bytes decode to a frame that encodes back to them, or throw P2pProtocolError', () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: SELECT_BYTES, maxLength: SELECT_BYTES }), fc.boolean(), (bytes, withMagic) => {
    const b = Buffer.from(bytes);
    if (withMagic) b.write('DKP1', 0, 'latin1');
    try {
      const f = decodeSelect(b);
      assert.deepEqual(encodeSelect(f.kind, f.token), b);
    } catch (e) {
      assert.ok(e instanceof P2pProtocolError);
    }
  }), { numRuns: 500 });
});
