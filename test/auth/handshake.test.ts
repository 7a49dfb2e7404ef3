import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { makeHandshake, verifyHandshake } from '../../src/auth/handshake.ts';
import { ReplayCache } from '../../src/auth/replay-cache.ts';

const seed = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');

test('handshake vector: seed ‖ first 16 bytes of HMAC-SHA256(key, seed ‖ name)', () => {
  const msg = makeHandshake('home', 'secret', seed);
  const expected = createHmac('sha256', 'secret').update(Buffer.concat([seed, Buffer.from('home')])).digest().subarray(0, 16);
  assert.equal(msg.length, 32);
  assert.equal(msg.subarray(16).toString('hex'), expected.toString('hex'));
});

test('verify finds the matching backend and rejects wrong keys, names and lengths', () => {
  const backends = [{ name: 'a', key: 'k1' }, { name: 'home', key: 'secret' }];
  assert.equal(verifyHandshake(makeHandshake('home', 'secret', seed), backends)?.name, 'home');
  assert.equal(verifyHandshake(makeHandshake('home', 'wrong', seed), backends), null);
  assert.equal(verifyHandshake(makeHandshake('other', 'secret', seed), backends), null);
  assert.equal(verifyHandshake(Buffer.alloc(31), backends), null);
  const flipped = makeHandshake('home', 'secret', seed);
  flipped[31] = flipped[31]! ^ 1;
  assert.equal(verifyHandshake(flipped, backends), null);
});

test('replay cache refuses a seed seen within the TTL and forgets it after', () => {
  let now = 0;
  const c = new ReplayCache(1000, 100, () => now);
  assert.equal(c.check(seed), true);
  assert.equal(c.check(seed), false);
  now = 1500;
  assert.equal(c.check(seed), true);
});

test('replay cache stays bounded', () => {
  const c = new ReplayCache(60_000, 50, () => 0);
  for (let i = 0; i < 1000; i++) c.check(Buffer.from(String(i)));
  assert.ok(c.size <= 50);
});
