import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IpBlocker } from '../../src/rendezvous/ip-blocker.ts';

/** hbbs's RegisterPk blocker (FACTS §5.1), with its memory caps. */
test('32 per address pass, then refused until a minute without a passing call', () => {
  let now = 0;
  const b = new IpBlocker({}, () => now);
  const results = Array.from({ length: 34 }, (_, i) => b.check('192.0.2.1', `id-${i}`));
  assert.equal(results.filter(Boolean).length, 32);
  assert.deepEqual(results.slice(32), [false, false]);
  now += 30_000;
  assert.equal(b.check('192.0.2.1', 'x'), false, 'refusals do not restart the window, but the last pass was < 60 s ago');
  now += 31_000;
  assert.equal(b.check('192.0.2.1', 'x'), true, 'a minute after the last pass it counts again');
});

test('301 distinct ids per address per day; known ids still pass beyond; a day later it starts over', () => {
  let now = 0;
  const b = new IpBlocker({ perMinute: 1e9 }, () => now);
  b.check('192.0.2.2', 'first');
  for (let i = 0; i < 301; i++) assert.equal(b.check('192.0.2.2', `id-${i}`), true, `id ${i}`);
  assert.equal(b.check('192.0.2.2', 'one-more'), false);
  assert.equal(b.check('192.0.2.2', 'id-7'), true, 'an id already seen from there still passes');
  now += 86_400_001;
  assert.equal(b.check('192.0.2.2', 'one-more'), true);
});

test('memory is capped: at most maxIps addresses and maxIds ids over all of them, least recently used dropped', () => {
  const b = new IpBlocker({ perMinute: 1e9, maxIps: 100, maxIds: 1000 });
  for (let ip = 0; ip < 500; ip++) {
    const a = `2001:db8:${ip.toString(16)}::1`; // one /64 each: an IPv6 source counts per /64
    b.check(a, 'seed');
    for (let i = 0; i < 50; i++) b.check(a, `id-${i}`);
    assert.ok(b.size <= 100, `addresses ${b.size}`);
    assert.ok(b.ids <= 1000, `ids ${b.ids}`);
  }
  assert.ok(b.ids > 900, 'the cap is used, not emptied');
});
