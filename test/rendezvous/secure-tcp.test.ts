import assert from 'node:assert/strict';
import { test } from 'node:test';
import nacl from 'tweetnacl';
import { SecureTcpError } from '../../src/rendezvous/errors.ts';
import { generateKeyPair, openCombined } from '../../src/rendezvous/keys.ts';
import { decodeRendezvous } from '../../src/rendezvous/messages.ts';
import { clientKeyExchange, KeyExchangeSource, SecureChannel, ServerKeyExchange } from '../../src/rendezvous/secure-tcp.ts';

/** The secure TCP exchange without sockets (FACTS §7): both ends, tampering, nonces, rotation. */
const boxPkOf = (kx: ServerKeyExchange, serverPk: Uint8Array): Uint8Array => {
  const m = decodeRendezvous(kx.hello);
  assert.equal(m.union.case, 'keyExchange');
  return openCombined((m.union.value as { keys: Uint8Array[] }).keys[0]!, serverPk);
};

test('client and server agree on the key; each direction counts its own nonces from 1', () => {
  const server = generateKeyPair();
  const kx = new ServerKeyExchange(server);
  const c = clientKeyExchange(boxPkOf(kx, server.publicKey));
  const s = kx.accept(c.keys);
  for (let i = 0; i < 3; i++) assert.equal(Buffer.from(s.open(c.channel.seal(Buffer.from(`up ${i}`)))).toString(), `up ${i}`);
  assert.equal(Buffer.from(c.channel.open(s.seal(Buffer.from('down')))).toString(), 'down');
  // The first frame is secretbox with nonce 1 (u64 LE in the first 8 bytes): checked with tweetnacl directly.
  const key = nacl.randomBytes(32);
  const a = new SecureChannel(key);
  const nonce = new Uint8Array(24);
  nonce[0] = 1;
  assert.deepEqual(Buffer.from(a.seal(Buffer.from('x'))), Buffer.from(nacl.secretbox(Buffer.from('x'), nonce, key)));
});

test('a tampered frame, a replayed frame, and a malformed or foreign exchange are SecureTcpError', () => {
  const server = generateKeyPair();
  const kx = new ServerKeyExchange(server);
  const c = clientKeyExchange(boxPkOf(kx, server.publicKey));
  const s = kx.accept(c.keys);
  const f = c.channel.seal(Buffer.from('hello'));
  const bad = Buffer.from(f);
  bad[bad.length - 1]! ^= 1;
  assert.throws(() => s.open(bad), SecureTcpError);
  const s2 = kx.accept(c.keys);
  assert.equal(Buffer.from(s2.open(f)).toString(), 'hello');
  assert.throws(() => s2.open(f), SecureTcpError, 'the same frame again has the wrong nonce');
  assert.throws(() => kx.accept([c.keys[0]]), SecureTcpError);
  assert.throws(() => kx.accept([Buffer.alloc(32, 7), Buffer.alloc(48)]), SecureTcpError);
  const other = new ServerKeyExchange(server);
  assert.throws(() => other.accept(c.keys), SecureTcpError, 'sealed to another box key');
  // 0- and 1-byte frames pass as they are (heartbeats).
  assert.equal(s.open(new Uint8Array(0)).length, 0);
});

test('KeyExchangeSource keeps one box key for its period and makes a new one after it', () => {
  let now = 0;
  const src = new KeyExchangeSource(generateKeyPair(), 60_000, () => now);
  const a = src.current();
  now = 59_999;
  assert.equal(src.current(), a);
  now = 60_000;
  assert.notEqual(src.current(), a);
  assert.notDeepEqual(Buffer.from(src.current().hello), Buffer.from(a.hello));
});
