import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NetworkInterfaceInfo } from 'node:os';
import { candidateAddress, formatCandidate, orderCandidates, toCandidate, undialable, type Candidate } from '../../src/p2p/candidate.ts';
import { CandidateError } from '../../src/p2p/errors.ts';
import { gatherCandidates, lanCandidates } from '../../src/p2p/gather.ts';

const pub = (host: string, port = 40000): Candidate => ({ kind: 'public', host, port });
const lan = (host: string, port = 40000): Candidate => ({ kind: 'lan', host, port });

test('public candidates come before LAN ones, in the given order within a kind', () => {
  const got = orderCandidates([lan('192.168.1.5'), pub('203.0.113.7'), lan('10.0.0.5'), pub('198.51.100.9')], { family: 4 });
  assert.deepEqual(got, [pub('203.0.113.7'), pub('198.51.100.9'), lan('192.168.1.5'), lan('10.0.0.5')]);
});

test('a peer behind the same public address (same NAT) is tried on its LAN addresses first', () => {
  const got = orderCandidates([pub('203.0.113.7', 41000), lan('192.168.1.5')], { family: 4, mine: { host: '203.0.113.7', port: 52000 } });
  assert.deepEqual(got, [lan('192.168.1.5'), pub('203.0.113.7', 41000)]);
  // Another public address: public first as usual.
  const other = orderCandidates([pub('203.0.113.7', 41000), lan('192.168.1.5')], { family: 4, mine: { host: '198.51.100.1', port: 52000 } });
  assert.deepEqual(other, [pub('203.0.113.7', 41000), lan('192.168.1.5')]);
});

test('duplicates are kept once, as public when one of them is public', () => {
  const got = orderCandidates([lan('203.0.113.7'), pub('203.0.113.7'), lan('203.0.113.7', 40001)], { family: 4 });
  assert.deepEqual(got, [pub('203.0.113.7'), lan('203.0.113.7', 40001)]);
});

test('undialable addresses, other families and bad ports are dropped; at most max candidates', () => {
  const bad = [pub('127.0.0.1'), lan('0.0.0.0'), lan('169.254.1.1'), lan('224.0.0.1'), lan('255.255.255.255'), lan('2001:db8::1'), lan('10.0.0.1', 0), lan('10.0.0.2', 70000), lan('example.com')];
  assert.deepEqual(orderCandidates(bad, { family: 4 }), []);
  const many = Array.from({ length: 20 }, (_, i) => lan(`10.0.0.${i + 1}`));
  assert.equal(orderCandidates(many, { family: 4 }).length, 8);
  assert.equal(orderCandidates(many, { family: 4, max: 3 }).length, 3);
  assert.deepEqual(orderCandidates([lan('2001:db8::1'), lan('10.0.0.1'), lan('::1'), lan('fe80::1')], { family: 6 }), [lan('2001:db8::1')]);
});

test('undialable says why; toCandidate refuses with CandidateError and unmaps ::ffff:', () => {
  assert.equal(undialable('127.0.0.2'), 'loopback');
  assert.equal(undialable('0.1.2.3'), 'unspecified');
  assert.equal(undialable('not an ip'), 'not an IP address');
  assert.equal(undialable('198.18.1.2'), undefined);
  assert.equal(undialable('::ffff:10.0.0.1'), 'IPv4-mapped');
  assert.deepEqual(toCandidate('public', '::ffff:198.18.1.2', 5), pub('198.18.1.2', 5));
  assert.throws(() => toCandidate('lan', '127.0.0.1', 5), (e: unknown) => e instanceof CandidateError && e.code === 'DK_P2P_CANDIDATE' && /loopback/.test(e.message));
  assert.throws(() => toCandidate('lan', '10.0.0.1', 65536), /port out of range/);
});

test('formatting: IPv6 in brackets, kind first', () => {
  assert.equal(candidateAddress(pub('2001:db8::1', 443)), '[2001:db8::1]:443');
  assert.equal(formatCandidate(lan('10.0.0.1', 22)), 'lan 10.0.0.1:22');
});

test('LAN candidates come from the interfaces: internal, link-local and other-family addresses left out', () => {
  const info = (address: string, family: 'IPv4' | 'IPv6', internal = false): NetworkInterfaceInfo =>
    ({ address, family, internal, netmask: '', mac: '00:00:00:00:00:00', cidr: null, ...(family === 'IPv6' ? { scopeid: 0 } : {}) }) as NetworkInterfaceInfo;
  const ifaces = {
    lo: [info('127.0.0.1', 'IPv4', true), info('::1', 'IPv6', true)],
    eth0: [info('192.168.1.5', 'IPv4'), info('fe80::1', 'IPv6'), info('2001:db8::5', 'IPv6')],
    eth1: [info('169.254.3.3', 'IPv4'), info('10.1.2.3', 'IPv4')],
  };
  assert.deepEqual(lanCandidates(40000, 4, ifaces), [lan('192.168.1.5'), lan('10.1.2.3')]);
  assert.deepEqual(lanCandidates(40000, 6, ifaces), [lan('2001:db8::5')]);
  assert.deepEqual(gatherCandidates({ host: '203.0.113.7', port: 1234 }, 40000, 4, ifaces), [pub('203.0.113.7', 1234), lan('192.168.1.5'), lan('10.1.2.3')]);
  assert.deepEqual(gatherCandidates(undefined, 40000, 4, { lo: ifaces.lo }), []);
});
