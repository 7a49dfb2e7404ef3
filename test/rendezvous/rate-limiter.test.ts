import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateLimiter } from '../../src/rendezvous/rate-limiter.ts';

test('RateLimiter: a burst, then the refill rate; keys are independent; the table is capped', () => {
  let now = 1_000_000;
  const r = new RateLimiter(2, 4, 3, () => now);
  for (let i = 0; i < 4; i++) assert.ok(r.take('a'), `burst ${i}`);
  assert.equal(r.take('a'), false);
  assert.ok(r.take('b'), 'another key has its own bucket');
  now += 499;
  assert.equal(r.take('a'), false, 'under one token regained');
  now += 1;
  assert.ok(r.take('a'), 'one token after 500 ms at 2/s');
  assert.equal(r.take('a'), false);
  now += 60_000;
  for (let i = 0; i < 4; i++) assert.ok(r.take('a'), 'refilled only up to the burst');
  assert.equal(r.take('a'), false);
  r.take('c');
  r.take('d');
  assert.equal(r.size, 3, 'at most maxKeys buckets');
  assert.ok(r.take('b'), 'b was the least recently used: dropped, so it starts afresh');
});
