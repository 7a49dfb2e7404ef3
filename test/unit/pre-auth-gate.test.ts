import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PreAuthGate } from '../../src/gateway/pre-auth.ts';

function gate(max = 4, maxPerIp = 2, deadlineMs = 1000) {
  let now = 0;
  const expired: string[] = [];
  const g = new PreAuthGate({ max, maxPerIp, deadlineMs, now: () => now });
  const admit = (name: string, ip: string) => {
    const key = { name };
    return { key, refused: g.admit(key, ip, () => expired.push(name)) };
  };
  return { g, admit, expired, tick: (ms: number) => { now += ms; return g.sweep(); } };
}

test('pre-auth gate: one address gets its share, others still get in, the total is capped', () => {
  const { g, admit } = gate(4, 2);
  assert.equal(admit('a1', '10.0.0.1').refused, null);
  assert.equal(admit('a2', '10.0.0.1').refused, null);
  assert.equal(admit('a3', '10.0.0.1').refused, 'per_ip', 'a third from the same address is over its share');
  assert.equal(admit('b1', '10.0.0.2').refused, null, 'another address is not locked out');
  assert.equal(admit('c1', '10.0.0.3').refused, null);
  assert.equal(admit('d1', '10.0.0.4').refused, 'overload', 'the total cap holds');
  assert.equal(g.size, 4);
  assert.equal(g.heldBy('10.0.0.1'), 2);
});

test('pre-auth gate: release frees the slot; releasing twice or an unknown key is harmless', () => {
  const { g, admit } = gate(4, 1);
  const a = admit('a', '10.0.0.1');
  assert.equal(admit('a2', '10.0.0.1').refused, 'per_ip');
  g.release(a.key);
  g.release(a.key);
  g.release({});
  assert.equal(g.heldBy('10.0.0.1'), 0);
  assert.equal(admit('a3', '10.0.0.1').refused, null);
  assert.equal(g.size, 1);
});

test('pre-auth gate: the deadline covers every step; a transfer keeps source and deadline', () => {
  const { g, admit, expired, tick } = gate(4, 2, 1000);
  const sock = admit('sock', '10.0.0.1');
  assert.equal(tick(600), 0);
  const stream = { name: 'stream' };
  assert.ok(g.transfer(sock.key, stream, () => expired.push('stream')));
  assert.equal(g.pending(sock.key), false);
  assert.equal(g.heldBy('10.0.0.1'), 1, 'the stream holds the socket\'s slot, not a second one');
  assert.equal(tick(399), 0);
  assert.equal(tick(1), 1, 'expires at the socket\'s deadline, not 1000 ms after the transfer');
  assert.deepEqual(expired, ['stream']);
  assert.equal(g.size, 0);
  assert.equal(g.transfer(sock.key, {}, () => undefined), false, 'an expired or released key cannot be transferred');
});

test('pre-auth gate: clear expires everything (shutdown)', () => {
  const { g, admit, expired } = gate();
  admit('a', '10.0.0.1');
  admit('b', '10.0.0.2');
  g.clear();
  assert.deepEqual(expired.sort(), ['a', 'b']);
  assert.equal(g.size, 0);
  assert.equal(g.heldBy('10.0.0.1'), 0);
});
