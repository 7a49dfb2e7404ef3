import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { bytesToIp, ipToBytes, normalizeIp } from '../../src/protocol/address.ts';

test('property: 4/16 address bytes → text → bytes is the identity, and the text is a valid IP', () => {
  fc.assert(fc.property(fc.oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 16, maxLength: 16 })), (b) => {
    const text = bytesToIp(b);
    assert.equal(isIP(text), b.length === 4 ? 4 : 6, text);
    assert.deepEqual([...ipToBytes(text)], [...b]);
  }), { numRuns: 2000 });
});

test('IPv6 forms: compressed, embedded IPv4, zone id; mapped IPv4 normalised', () => {
  assert.equal(Buffer.from(ipToBytes('2001:db8::1')).toString('hex'), '20010db8000000000000000000000001');
  assert.equal(Buffer.from(ipToBytes('::ffff:192.0.2.1')).toString('hex'), '00000000000000000000ffffc0000201');
  assert.equal(Buffer.from(ipToBytes('fe80::1%eth0')).toString('hex'), 'fe800000000000000000000000000001');
  assert.equal(bytesToIp(ipToBytes('2001:db8:0:0:1:0:0:1')), '2001:db8::1:0:0:1');
  assert.equal(normalizeIp('::ffff:127.0.0.2'), '127.0.0.2');
  assert.throws(() => ipToBytes('nope'), /not an IP/);
});
