/**
 * AddrMangle (hbb_common src/lib.rs:126-200): how RustDesk writes a socket address into
 * `socket_addr` / `local_addr` fields. IPv4 addresses are salted with the time so that NAT
 * routers scanning payloads for their own addresses do not rewrite them; the salt makes every
 * encoding of the same address different, so compare decoded addresses, never bytes.
 *
 * IPv4, with tm = unix time in µs mod 2^32 and ip = the octets read as a little-endian u32:
 *   v = ((ip + tm) << 49) | (tm << 17) | (port + (tm & 0xFFFF))
 * written as 16 little-endian bytes with the trailing zero bytes removed (10-11 bytes).
 * The three fields do not overlap (port + 16 bits of tm < 2^17; tm < 2^32 ends at bit 48), so
 * the decoder below inverts exactly and can tell an encoder's output from anything else.
 * IPv6: the 16 octets ‖ port as u16 little-endian (18 bytes), no salt.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { bytesToIp, ipToBytes } from '../protocol/address.ts';
import { AddressError, AddrMangleError } from './errors.ts';

export interface MangledAddress {
  family: 'IPv4' | 'IPv6';
  address: string;
  port: number;
}

/** An encoding of a genuine IPv4 address is below 2^82: (ip + tm) < 2^33, shifted by 49. */
const V4_VALUE_BITS = 82n;
const U32 = 0xffff_ffffn;

/** The salt upstream uses: the current unix time in microseconds, mod 2^32. */
export function saltNow(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000) % 2 ** 32;
}

/**
 * upstream try_into_v4 (lib.rs:128-140): an IPv6 address other than ::1 whose first 80 bits are
 * zero and next 16 are 0000 or ffff (v4-mapped ::ffff:a.b.c.d, or v4-compatible ::a.b.c.d,
 * including ::) is the IPv4 address in its last 32 bits. Dual-stack sockets report IPv4 peers as
 * ::ffff:a.b.c.d, and hbbs compares and mangles the IPv4 form.
 */
export function toV4IfMapped(address: string): string {
  if (!isIPv6(address)) return address;
  const b = ipToBytes(address);
  if (b.subarray(0, 10).some((x) => x !== 0)) return address;
  const mid = (b[10]! << 8) | b[11]!;
  const loopback = mid === 0 && b.subarray(12, 15).every((x) => x === 0) && b[15] === 1;
  if ((mid !== 0 && mid !== 0xffff) || loopback) return address;
  return bytesToIp(b.subarray(12, 16));
}

/** Mangles an address; `salt` (µs mod 2^32) defaults to the clock, as upstream. */
export function encodeAddrMangle(addr: { address: string; port: number }, salt: number = saltNow()): Buffer {
  const { port } = addr;
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new AddressError(`port ${port} is not in 0..65535`);
  if (!Number.isInteger(salt) || salt < 0 || salt > 0xffff_ffff) throw new RangeError(`salt must be a u32, got ${salt}`);
  const address = toV4IfMapped(addr.address);
  if (isIPv4(address)) {
    const o = ipToBytes(address);
    const ip = BigInt(o[0]! + o[1]! * 0x100 + o[2]! * 0x1_0000 + o[3]! * 0x100_0000);
    const tm = BigInt(salt);
    let v = ((ip + tm) << 49n) | (tm << 17n) | (BigInt(port) + (tm & 0xffffn));
    const out: number[] = [];
    while (v > 0n) {
      out.push(Number(v & 0xffn));
      v >>= 8n;
    }
    return Buffer.from(out);
  }
  if (!isIPv6(address)) throw new AddressError(`${JSON.stringify(addr.address)} is not an IP address`);
  const out = Buffer.alloc(18);
  out.set(ipToBytes(address));
  out.writeUInt16LE(port, 16);
  return out;
}

/**
 * Decodes mangled bytes. Refused with AddrMangleError (upstream would yield 0.0.0.0:0 or some
 * address computed with wrapping arithmetic, see docs/rendezvous.md):
 * - empty bytes: every message uses an empty field for "no address";
 * - 17 bytes or more than 18;
 * - up to 16 bytes that no encoder produces (a value of 82 bits or more, ip or port out of range
 *   once the salt is taken off).
 * An 18-byte IPv6 address is returned as IPv6 even when v4-mapped, as upstream does.
 */
export function decodeAddrMangle(bytes: Uint8Array): MangledAddress {
  const n = bytes.length;
  if (n === 0) throw new AddrMangleError('empty');
  if (n === 18) {
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, n);
    return { family: 'IPv6', address: bytesToIp(b.subarray(0, 16)), port: b.readUInt16LE(16) };
  }
  if (n > 16) throw new AddrMangleError(`${n} bytes: IPv4 takes at most 16 and IPv6 exactly 18`);
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  if (v >> V4_VALUE_BITS !== 0n) throw new AddrMangleError(`value of ${v.toString(2).length} bits, an IPv4 encoding has at most ${V4_VALUE_BITS}`);
  const tm = (v >> 17n) & U32;
  const ip = (v >> 49n) - tm;
  if (ip < 0n || ip > U32) throw new AddrMangleError('the address part is out of range for its salt');
  const port = (v & 0x1ffffn) - (tm & 0xffffn);
  if (port < 0n || port > 0xffffn) throw new AddrMangleError('the port part is out of range for its salt');
  const x = Number(ip);
  return { family: 'IPv4', address: `${x & 0xff}.${(x >>> 8) & 0xff}.${(x >>> 16) & 0xff}.${x >>> 24}`, port: Number(port) };
}
