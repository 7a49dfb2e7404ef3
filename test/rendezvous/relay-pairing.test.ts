import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RelayPairing, type RelayPairingInit } from '../../src/rendezvous/relay-pairing.ts';

function table(over: Partial<RelayPairingInit> = {}): { t: RelayPairing<string>; clock: { now: number } } {
  const clock = { now: 1_000 };
  const t = new RelayPairing<string>({ pairTimeoutMs: 30_000, maxPending: 10, maxPendingPerIp: 3, maxPaired: 5, now: () => clock.now, ...over });
  return { t, clock };
}

test('the first half with a uuid waits; the second with the same uuid pairs with it, whoever it is', () => {
  const { t } = table();
  assert.deepEqual(t.offer('u1', '10.0.0.1', 'A'), { kind: 'waiting' });
  assert.deepEqual(t.offer('u2', '10.0.0.1', 'C'), { kind: 'waiting' });
  assert.equal(t.pending, 2);
  // Same IP as the waiting half is fine (two peers behind one NAT).
  assert.deepEqual(t.offer('u1', '10.0.0.1', 'B'), { kind: 'paired', first: 'A', firstIp: '10.0.0.1' });
  assert.equal(t.pending, 1);
  assert.equal(t.paired, 1);
  assert.equal(t.pendingFrom('10.0.0.1'), 1);
});

test('a uuid whose pair is live is refused until the pair is released, then waits again', () => {
  const { t } = table();
  t.offer('u', '10.0.0.1', 'A');
  t.offer('u', '10.0.0.2', 'B');
  assert.deepEqual(t.offer('u', '10.0.0.3', 'X'), { kind: 'refused', reason: 'uuid_in_use' });
  assert.equal(t.pending, 0);
  t.release('u');
  assert.equal(t.paired, 0);
  assert.deepEqual(t.offer('u', '10.0.0.3', 'X'), { kind: 'waiting' });
});

test('a waiting half expires after pairTimeoutMs and only that half is removed', () => {
  const { t, clock } = table({ pairTimeoutMs: 100 });
  t.offer('a', '10.0.0.1', 'A');
  clock.now += 60;
  t.offer('b', '10.0.0.1', 'B');
  clock.now += 39;
  assert.deepEqual(t.sweep(), []);
  clock.now += 1;
  assert.deepEqual(t.sweep(), ['A']);
  assert.equal(t.pending, 1);
  // The expired uuid is free: a new half waits under it (hbbr's late remove() would drop it).
  assert.deepEqual(t.offer('a', '10.0.0.1', 'A2'), { kind: 'waiting' });
  clock.now += 60;
  assert.deepEqual(t.sweep(), ['B']);
  assert.deepEqual(t.offer('a', '10.0.0.2', 'Z'), { kind: 'paired', first: 'A2', firstIp: '10.0.0.1' });
});

test('withdraw removes a waiting half only if it is the one given', () => {
  const { t } = table();
  t.offer('u', '10.0.0.1', 'A');
  assert.equal(t.withdraw('u', 'someone else'), false);
  assert.equal(t.pending, 1);
  assert.equal(t.withdraw('u', 'A'), true);
  assert.equal(t.pending, 0);
  assert.equal(t.pendingFrom('10.0.0.1'), 0);
  assert.equal(t.withdraw('u', 'A'), false);
});

test('caps: waiting halves per IP and in total, live pairs; each with its own reason', () => {
  const { t } = table({ maxPending: 4, maxPendingPerIp: 2, maxPaired: 1 });
  t.offer('a1', '10.0.0.1', 'a1');
  t.offer('a2', '10.0.0.1', 'a2');
  assert.deepEqual(t.offer('a3', '10.0.0.1', 'a3'), { kind: 'refused', reason: 'pending_per_ip' });
  t.offer('b1', '10.0.0.2', 'b1');
  t.offer('c1', '10.0.0.3', 'c1');
  assert.deepEqual(t.offer('d1', '10.0.0.4', 'd1'), { kind: 'refused', reason: 'pending_full' });
  // Completing a pair is not a new waiting half: allowed at the pending cap, from a capped IP.
  assert.equal(t.offer('a1', '10.0.0.1', 'x').kind, 'paired');
  assert.deepEqual(t.offer('a2', '10.0.0.9', 'y'), { kind: 'refused', reason: 'paired_full' });
  assert.equal(t.pending, 3);
});

test('options must be non-negative integers', () => {
  assert.throws(() => table({ maxPending: -1 }), RangeError);
  assert.throws(() => table({ pairTimeoutMs: 1.5 }), RangeError);
});
