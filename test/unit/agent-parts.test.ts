import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Allowlist } from '../../src/agent/allowlist.ts';
import { backoffDelay } from '../../src/util/backoff.ts';
import { connectScan, scanTargets } from '../../src/agent/scan.ts';
import { parseNetRule } from '../../src/util/cidr.ts';

test('backoff: grows exponentially, jittered, never above the cap', () => {
  fc.assert(fc.property(fc.nat(100), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, r) => {
    const d = backoffDelay(attempt, 500, 30_000, () => r);
    const step = Math.min(30_000, 500 * 2 ** attempt);
    assert.ok(d >= step / 2 && d <= step && d <= 30_000);
  }));
  assert.equal(backoffDelay(0, 500, 30_000, () => 0), 250);
  assert.equal(backoffDelay(3, 500, 30_000, () => 0.999999) < 4000, true);
});

test('allowlist rules: CIDR with and without ports, IPv6 in brackets', () => {
  const a = new Allowlist(['192.168.1.0/24:22,3389', '10.0.0.5', '[::1]:8000-8100', '127.0.0.1/32']);
  assert.ok(a.allows('192.168.1.9', 22));
  assert.ok(!a.allows('192.168.1.9', 80));
  assert.ok(!a.allows('192.168.2.9', 22));
  assert.ok(a.allows('10.0.0.5', 65535));
  assert.ok(a.allows('::1', 8050));
  assert.ok(!a.allows('::1', 22));
  assert.ok(!a.allows('::ffff:192.168.1.9', 3390));
  assert.throws(() => parseNetRule('192.168.1.0/33'), /prefix/);
  assert.throws(() => parseNetRule('host.example:22'), /not an IP/);
});

test('scan targets: hosts of each network, bounded, IPv6 only when small', () => {
  const r = scanTargets([parseNetRule('192.168.1.0/30'), parseNetRule('10.0.0.7'), parseNetRule('::1/128')], 100);
  assert.deepEqual(r.hosts, ['192.168.1.1', '192.168.1.2', '10.0.0.7', '::1']);
  assert.equal(r.truncated, false);
  const big = scanTargets([parseNetRule('10.0.0.0/8')], 1000);
  assert.equal(big.hosts.length, 1000);
  assert.equal(big.truncated, true);
  assert.equal(scanTargets([parseNetRule('2001:db8::/64')], 1000).truncated, true);
});

test('connect-scan keeps at most `concurrency` probes in flight', async () => {
  let inFlight = 0;
  let peak = 0;
  const hosts = Array.from({ length: 50 }, (_, i) => `h${i}`);
  const open = await connectScan(hosts, 22, { concurrency: 7, timeoutMs: 10, maxHosts: 100 }, async (h) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    await new Promise((r) => setTimeout(r, Math.random() * 5)); // a probe's own latency, varied so probes finish out of order
    inFlight--;
    return Number(h.slice(1)) % 10 === 0;
  });
  assert.equal(peak, 7);
  assert.deepEqual(open, ['h0', 'h10', 'h20', 'h30', 'h40']);
});
