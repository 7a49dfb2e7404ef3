import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeAddrMangle, encodeAddrMangle, toV4IfMapped } from '../../src/rendezvous/addr-mangle.ts';
import { AddressError, AddrMangleError } from '../../src/rendezvous/errors.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// FACTS.md §3, table at lines 51-55: bytes computed from upstream's algorithm (hbb_common
// src/lib.rs:126-200) by an independent script, copied here by hand, not made by our encoder.
const V4_VECTORS: { address: string; port: number; salt: number; bytes: string }[] = [
  { address: '1.2.3.4', port: 5678, salt: 0, bytes: '2e160000000002040608' },
  { address: '192.168.1.10', port: 21116, salt: 0x18202240, bytes: 'bc748044403000964344' }, // 1 700 000 000 123 456 µs mod 2^32
  { address: '203.0.113.7', port: 443, salt: 0xffffffff, bytes: 'ba01ffffffff9501e20e02' }, // ip + tm carries past 32 bits
  { address: '127.0.0.1', port: 50000, salt: 0x89abcdef, bytes: '3f91df9b5713dd9c571501' },
];
const V6_VECTOR = { address: '2001:db8::1', port: 8080, bytes: '20010db8000000000000000000000001901f' }; // FACTS line 55

test('decode: the FACTS §3 IPv4 vectors', () => {
  for (const v of V4_VECTORS) assert.deepEqual(decodeAddrMangle(hex(v.bytes)), { family: 'IPv4', address: v.address, port: v.port });
});

test('encode with the same salt gives exactly the FACTS §3 bytes (trailing zeros dropped: 10-11 bytes)', () => {
  for (const v of V4_VECTORS) assert.equal(encodeAddrMangle(v, v.salt).toString('hex'), v.bytes);
});

test('IPv6: 16 octets ‖ port LE, both ways (FACTS §3 vector)', () => {
  assert.equal(encodeAddrMangle(V6_VECTOR).toString('hex'), V6_VECTOR.bytes);
  assert.deepEqual(decodeAddrMangle(hex(V6_VECTOR.bytes)), { family: 'IPv6', address: '2001:db8::1', port: 8080 });
});

test('v4-mapped and v4-compatible IPv6 are mangled as IPv4; ::1 stays IPv6 (try_into_v4, FACTS line 39)', () => {
  assert.equal(encodeAddrMangle({ address: '::ffff:192.168.1.10', port: 21116 }, 0x18202240).toString('hex'), 'bc748044403000964344');
  assert.equal(encodeAddrMangle({ address: '::c0a8:10a', port: 21116 }, 0x18202240).toString('hex'), 'bc748044403000964344');
  assert.equal(encodeAddrMangle({ address: '::1', port: 8080 }).toString('hex'), '00000000000000000000000000000001901f');
  assert.equal(toV4IfMapped('::'), '0.0.0.0');
  assert.equal(toV4IfMapped('::1'), '::1');
  assert.equal(toV4IfMapped('::ffff:1.2.3.4'), '1.2.3.4');
  assert.equal(toV4IfMapped('::1:0:1.2.3.4'), '::1:0:1.2.3.4'); // group 6 neither 0 nor ffff
  assert.equal(toV4IfMapped('10.0.0.1'), '10.0.0.1');
});

test('an 18-byte v4-mapped address decodes as IPv6, as upstream does', () => {
  assert.deepEqual(decodeAddrMangle(hex('00000000000000000000ffff01020304 5000')), { family: 'IPv6', address: '::ffff:102:304', port: 80 });
});

test('zero padding up to 16 bytes does not change the value', () => {
  assert.deepEqual(decodeAddrMangle(hex('2e160000000002040608 000000000000')), { family: 'IPv4', address: '1.2.3.4', port: 5678 });
});

test('malformed input is refused with AddrMangleError', () => {
  const bad: [string, string][] = [
    ['', 'empty'],
    ['00'.repeat(17), '17 bytes'],
    ['00'.repeat(19), '19 bytes'],
    ['ff'.repeat(16), 'a value of 128 bits'],
    ['0000000000000000000004', 'bit 82 set'],
    ['010002', 'tm = 1 but ip + tm = 0: the address would be negative'],
    ['00000a0000000a', 'tm = 5 but the port field is 0: the port would be negative'],
    ['ffff01', 'tm = 0 and a port field of 0x1ffff'],
    ['0000000000000000000002', 'tm = 0 and ip + tm = 2^32'],
  ];
  for (const [h, why] of bad) assert.throws(() => decodeAddrMangle(hex(h)), AddrMangleError, why);
});

test('the encoder refuses what is not an IP address and a port', () => {
  assert.throws(() => encodeAddrMangle({ address: 'example.com', port: 1 }), AddressError);
  assert.throws(() => encodeAddrMangle({ address: '1.2.3.4', port: 65536 }), AddressError);
  assert.throws(() => encodeAddrMangle({ address: '1.2.3.4', port: 1.5 }), AddressError);
  assert.throws(() => encodeAddrMangle({ address: '1.2.3.4', port: 1 }, 2 ** 32), RangeError);
});

test('the clock salt: two encodings of one address differ in bytes but decode alike', () => {
  const a = encodeAddrMangle({ address: '10.1.2.3', port: 21116 }, 1000);
  const b = encodeAddrMangle({ address: '10.1.2.3', port: 21116 }, 2000);
  assert.notDeepEqual(a, b);
  assert.deepEqual(decodeAddrMangle(a), decodeAddrMangle(b));
  assert.deepEqual(decodeAddrMangle(encodeAddrMangle({ address: '10.1.2.3', port: 21116 })), { family: 'IPv4', address: '10.1.2.3', port: 21116 });
});
