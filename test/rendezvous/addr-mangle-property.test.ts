import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeAddrMangle, encodeAddrMangle } from '../../src/rendezvous/addr-mangle.ts';
import { AddrMangleError } from '../../src/rendezvous/errors.ts';
import { bytesToIp } from '../../src/protocol/address.ts';

const port = fc.integer({ min: 0, max: 65535 });
const salt = fc.integer({ min: 0, max: 2 ** 32 - 1 });

test('property: IPv4 round trip for every address, port and salt; at most 11 bytes, no trailing zero', () => {
  fc.assert(fc.property(fc.ipV4(), port, salt, (address, p, s) => {
    const b = encodeAddrMangle({ address, port: p }, s);
    assert.ok(b.length <= 11 && (b.length === 0 || b[b.length - 1] !== 0));
    if (b.length === 0) return; // 0.0.0.0:0 at salt 0 is the empty encoding, which decode refuses
    assert.deepEqual(decodeAddrMangle(b), { family: 'IPv4', address, port: p });
  }), { numRuns: 2000 });
});

test('property: IPv6 round trip (addresses that are not v4-mapped/compatible stay IPv6, 18 bytes)', () => {
  const v6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).filter((b) => b.subarray(0, 10).some((x) => x !== 0));
  fc.assert(fc.property(v6, port, (bytes, p) => {
    const address = bytesToIp(bytes);
    const b = encodeAddrMangle({ address, port: p });
    assert.equal(b.length, 18);
    assert.deepEqual(decodeAddrMangle(b), { family: 'IPv6', address, port: p });
  }), { numRuns: 1000 });
});

test('property: v4-mapped IPv6 round-trips to its IPv4 address', () => {
  fc.assert(fc.property(fc.ipV4(), port, salt, (v4, p, s) => {
    const b = encodeAddrMangle({ address: `::ffff:${v4}`, port: p }, s);
    if (b.length > 0) assert.deepEqual(decodeAddrMangle(b), { family: 'IPv4', address: v4, port: p });
  }));
});

test('property: any bytes decode to an address or an AddrMangleError, nothing else', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 24 }), (bytes) => {
    try {
      const a = decodeAddrMangle(bytes);
      assert.ok(a.port >= 0 && a.port <= 65535);
      assert.ok(bytes.length === 18 ? a.family === 'IPv6' : a.family === 'IPv4');
      // Whatever decodes is an encoding of that address: it decodes the same after a fresh mangle.
      assert.deepEqual(decodeAddrMangle(encodeAddrMangle(a, 12345)), a);
    } catch (e) {
      assert.ok(e instanceof AddrMangleError, String(e));
    }
  }), { numRuns: 5000 });
});
