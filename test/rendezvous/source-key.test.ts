import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnLimiter } from '../../src/rendezvous/conn-limiter.ts';
import { IpBlocker } from '../../src/rendezvous/ip-blocker.ts';
import { sourceKey } from '../../src/rendezvous/source-key.ts';

/**
 * The per-address limits count an IPv6 source by its /64: one subscriber (and so one attacker)
 * has at least a /64 and can send from any of its 2⁶⁴ addresses, so counting full IPv6
 * addresses would let one source past every per-address cap. IPv4 addresses stay as they are.
 */
test('sourceKey: IPv4 as is, IPv6 by its /64 whatever its spelling, v4-mapped as IPv4', () => {
  assert.equal(sourceKey('192.0.2.7'), '192.0.2.7');
  assert.equal(sourceKey('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(sourceKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd'), sourceKey('2001:0db8:0001:0002::1'));
  assert.notEqual(sourceKey('2001:db8:1:2::1'), sourceKey('2001:db8:1:3::1'));
  assert.equal(sourceKey('2001:db8:1:2::1'), '2001:db8:1:2::/64');
  assert.equal(sourceKey('::1'), '0:0:0:0::/64');
  assert.equal(sourceKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.equal(sourceKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
});

test('ConnLimiter counts the addresses of one IPv6 /64 together', () => {
  const l = new ConnLimiter(100, 2);
  assert.equal(l.acquire('2001:db8:1:2::1'), 'ok');
  assert.equal(l.acquire('2001:db8:1:2::2'), 'ok');
  assert.equal(l.acquire('2001:db8:1:2:ffff::3'), 'per_ip', 'a third address of the same /64');
  assert.equal(l.acquire('2001:db8:1:3::1'), 'ok', 'another /64');
  l.release('2001:db8:1:2::1');
  assert.equal(l.acquire('2001:db8:1:2::9'), 'ok', 'a slot of the /64 freed');
  assert.equal(l.total, 3);
});

test('IpBlocker counts RegisterPk from one IPv6 /64 together', () => {
  const b = new IpBlocker({ perMinute: 3, idsPerDay: 300, maxIps: 10 }, () => 1_000_000);
  let passed = 0;
  for (let i = 0; i < 50; i++) if (b.check(`2001:db8:5:6::${(i + 1).toString(16)}`, 'same-id')) passed++;
  assert.equal(passed, 5, 'the first, then perMinute + 1 more, as for one address');
});
