import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AgentAllowlist, MAX_KEPT_RULES } from '../../src/gateway/agent-allowlist.ts';
import { Allowlist } from '../../src/agent/allowlist.ts';
import { AllowFlag, decodeAllowlist, encodeAllowlist, ipToBytes, MAX_CMD_PARAMS, PayloadError } from '../../src/protocol/index.ts';

test('ALLOWLIST vector: 192.168.1.0/24 ports 22 and 3389, in one frame marked last', () => {
  const [p, ...more] = encodeAllowlist([{ address: ipToBytes('192.168.1.0'), prefix: 24, ports: [[22, 22], [3389, 3389]] }]);
  assert.equal(more.length, 0);
  assert.equal(p!.toString('hex'), '01' + '1804c0a80100' + '02' + '00160016' + '0d3d0d3d');
  const d = decodeAllowlist(p!);
  assert.equal(d.flags, AllowFlag.LAST);
  assert.deepEqual(d.rules.map((r) => [Buffer.from(r.address).toString('hex'), r.prefix, r.ports]), [['c0a80100', 24, [[22, 22], [3389, 3389]]]]);
  assert.equal(encodeAllowlist([])[0]!.toString('hex'), '01', 'an empty list: one frame, last');
  assert.equal(encodeAllowlist([], true)[0]!.toString('hex'), '03', 'incomplete');
});

test('a long list spans frames within the CMD limit; only the last is marked; the agent sends what it checks', () => {
  const rules = Array.from({ length: 2000 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24:22,80,443`);
  const wire = new Allowlist(rules).toWire();
  const frames = encodeAllowlist(wire.rules, wire.incomplete);
  assert.ok(frames.length > 1);
  assert.ok(frames.every((f) => f.length <= MAX_CMD_PARAMS));
  assert.deepEqual(frames.map((f) => f[0]), [...Array<number>(frames.length - 1).fill(0), AllowFlag.LAST]);
  const gw = new AgentAllowlist();
  gw.negotiated(true);
  frames.forEach((f, i) => assert.equal(gw.feed(f), i === frames.length - 1));
  assert.equal(gw.rules()!.length, 2000);
  assert.deepEqual(gw.check('10.7.207.9', 443), { verdict: 'allowed' });
  assert.equal(gw.check('10.7.207.9', 8443).verdict, 'refused');
  assert.equal(gw.check('10.200.0.1', 22).verdict, 'refused');
  // "*" hosts and IPv6 rules, and more than 255 port ranges in one rule.
  const many = Array.from({ length: 300 }, (_, i) => String(1000 + 2 * i)).join(',');
  const other = new AgentAllowlist();
  for (const f of encodeAllowlist(new Allowlist(['*:22', '[fd00::/64]:80', `127.0.0.1:${many}`]).toWire().rules)) other.feed(f);
  assert.deepEqual(other.check('203.0.113.9', 22), { verdict: 'allowed' });
  assert.deepEqual(other.check('2001:db8::1', 22), { verdict: 'allowed' });
  assert.deepEqual(other.check('fd00::5', 80), { verdict: 'allowed' });
  assert.equal(other.check('fd01::5', 80).verdict, 'refused');
  assert.deepEqual(other.check('127.0.0.1', 1598), { verdict: 'allowed' });
  assert.equal(other.check('127.0.0.1', 1599).verdict, 'refused');
  assert.ok(other.rules()!.includes('[fd00::/64]:80'));
});

test('malformed ALLOWLIST parameters are a PayloadError', () => {
  for (const hex of ['', '011805c0a80100010016', '01210400000000010016', '011804c0a80100000016', '011804c0a8010001', '011804c0a80100010000', '011804c0a8010001002a0016', '0118']) {
    assert.throws(() => decodeAllowlist(Buffer.from(hex, 'hex')), PayloadError, hex);
  }
});

test("the gateway's view: an agent that does not tell, a list too long to keep, frames after the last", () => {
  const old = new AgentAllowlist();
  assert.match((old.check('127.0.0.1', 22) as { why: string }).why, /not told its allowlist yet/);
  old.negotiated(false);
  assert.match((old.check('127.0.0.1', 22) as { why: string }).why, /does not tell its allowlist/);
  assert.equal(old.rules(), null);
  old.feed(encodeAllowlist([{ address: ipToBytes('127.0.0.1'), prefix: 32, ports: [[22, 22]] }])[0]!);
  assert.equal(old.rules(), null, 'not negotiated: ignored');

  const long = new AgentAllowlist();
  long.negotiated(true);
  const rules = Array.from({ length: MAX_KEPT_RULES + 1 }, (_, i) => ({ address: ipToBytes(`10.${i >> 8}.${i & 255}.1`), prefix: 32, ports: [[22, 22]] as [number, number][] }));
  for (const f of encodeAllowlist(rules)) long.feed(f);
  assert.equal(long.rules(), null);
  assert.match((long.check('10.0.0.1', 22) as { why: string }).why, /longer than the gateway checks/);
  const told = new AgentAllowlist();
  told.negotiated(true);
  told.feed(encodeAllowlist([], true)[0]!);
  assert.equal(told.check('10.0.0.1', 22).verdict, 'unknown', 'the agent said its list is incomplete');

  const once = new AgentAllowlist();
  once.negotiated(true);
  assert.equal(once.feed(encodeAllowlist([{ address: ipToBytes('127.0.0.1'), prefix: 32, ports: [[22, 22]] }])[0]!), true);
  assert.equal(once.feed(encodeAllowlist([{ address: ipToBytes('0.0.0.0'), prefix: 0, ports: [[1, 65535]] }])[0]!), false);
  assert.equal(once.check('10.0.0.1', 22).verdict, 'refused', 'a second list cannot widen the first');
});
