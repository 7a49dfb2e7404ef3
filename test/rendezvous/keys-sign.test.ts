import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  generateKeyPair, keyPairFromSecretKey, keyPairFromSeed, openCombined, openIdPk, signCombined, signIdPk,
} from '../../src/rendezvous/keys.ts';
import { KeyError, MessageDecodeError, SignatureError } from '../../src/rendezvous/errors.ts';

// RFC 8032 §7.1 TEST 2: a one-byte message 0x72.
const SEED2 = Buffer.from('4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb', 'hex');
const PK2 = Buffer.from('3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c', 'hex');
const SIG2 = '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00';

test('combined signing is RFC 8032 Ed25519 followed by the message (RFC 8032 TEST 2)', () => {
  const pair = keyPairFromSeed(SEED2);
  assert.deepEqual(pair.publicKey, PK2);
  assert.equal(signCombined(Buffer.from([0x72]), pair).toString('hex'), SIG2 + '72');
  assert.deepEqual(openCombined(Buffer.from(SIG2 + '72', 'hex'), PK2), Buffer.from([0x72]));
});

test('signed IdPk: signature ‖ IdPk bytes, verifying with the server public key (FACTS §4)', () => {
  const server = keyPairFromSecretKey(Buffer.concat([SEED2, PK2]));
  const peerPk = Buffer.alloc(32, 0x11);
  const signed = signIdPk('123456789', peerPk, server);
  // The message after the 64 signature bytes is IdPk{id, pk}, by hand: 0a 09 "123456789" 12 20 pk.
  assert.equal(signed.subarray(64).toString('hex'), '0a09313233343536373839' + '1220' + '11'.repeat(32));
  const opened = openIdPk(signed, server.publicKey);
  assert.deepEqual([opened.id, Buffer.from(opened.pk)], ['123456789', peerPk]);
  assert.deepEqual(openIdPk(signed, server.publicKeyObject).id, '123456789');
});

test('a tampered, short or foreign-signed IdPk is a SignatureError', () => {
  const server = generateKeyPair();
  const other = generateKeyPair();
  const signed = signIdPk('123456789', Buffer.alloc(32, 3), server);
  const flipped = Buffer.from(signed);
  flipped[70] = flipped[70]! ^ 1;
  assert.throws(() => openIdPk(flipped, server.publicKey), SignatureError);
  assert.throws(() => openIdPk(signed, other.publicKey), SignatureError);
  assert.throws(() => openIdPk(signed.subarray(0, 63), server.publicKey), SignatureError);
  // Validly signed but not an IdPk with a 32-byte key: what decode_id_pk refuses.
  assert.throws(() => openIdPk(signCombined(Buffer.from('0a01', 'hex'), server), server.publicKey), MessageDecodeError);
  assert.throws(() => openIdPk(signIdPk('x', Buffer.alloc(31), server), server.publicKey), SignatureError);
});

test('key material of the wrong size is a KeyError', () => {
  assert.throws(() => keyPairFromSeed(Buffer.alloc(31)), KeyError);
  assert.throws(() => keyPairFromSecretKey(Buffer.alloc(63)), KeyError);
  assert.throws(() => openCombined(Buffer.alloc(64), Buffer.alloc(31)), KeyError);
});
