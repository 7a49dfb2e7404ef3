import { BlockList, isIP } from 'node:net';
import { PortSet } from './port-range.ts';
import { ipToBytes, bytesToIp } from '../protocol/address.ts';
import type { Cidr } from '../protocol/command.ts';

/** "10.0.0.0/8", "192.168.1.9", "::1/128" → parts; throws a RangeError that says what is wrong. */
export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const [addr, pfx, ...rest] = text.trim().split('/');
  const v = isIP(addr ?? '');
  if (rest.length > 0 || v === 0) throw new RangeError(`"${text}" is not an IP address or CIDR (like 192.168.1.0/24 or ::1/128)`);
  const max = v === 4 ? 32 : 128;
  const prefix = pfx === undefined ? max : Number(pfx);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (pfx !== undefined && !/^\d+$/.test(pfx))) {
    throw new RangeError(`"${text}": prefix must be 0-${max}`);
  }
  return { address: addr!, prefix, family: v === 4 ? 'ipv4' : 'ipv6' };
}

export function cidrToWire(text: string): Cidr {
  const c = parseCidr(text);
  return { address: ipToBytes(c.address), prefix: c.prefix };
}
export function wireToCidr(c: Cidr): string {
  return `${bytesToIp(c.address)}/${c.prefix}`;
}

/** A set of networks (net.BlockList underneath); '*' matches every address. */
export class NetSet {
  readonly #list = new BlockList();
  readonly #any: boolean;
  readonly entries: readonly string[];

  constructor(cidrs: readonly string[]) {
    this.entries = cidrs;
    this.#any = cidrs.includes('*');
    for (const c of cidrs) {
      if (c === '*') continue;
      const p = parseCidr(c);
      this.#list.addSubnet(p.address, p.prefix, p.family);
    }
  }

  has(ip: string): boolean {
    if (this.#any) return true;
    const v = isIP(ip);
    if (v === 0) return false;
    return this.#list.check(ip, v === 4 ? 'ipv4' : 'ipv6');
  }
}

/** One allowlist rule of an agent: "CIDR[:PORTS]" — e.g. "192.168.1.0/24:22,3389" or "[::1]:22". */
export interface NetRule {
  text: string;
  cidr: string;
  nets: NetSet;
  ports: PortSet;
}

export function parseNetRule(text: string): NetRule {
  const t = text.trim();
  let cidr = t;
  let ports = '*';
  const bracket = /^\[([^\]]+)\](?::(.+))?$/.exec(t);
  if (bracket) {
    cidr = bracket[1]!;
    ports = bracket[2] ?? '*';
  } else if (!t.includes('::') && t.split(':').length === 2) {
    [cidr, ports] = t.split(':') as [string, string];
  } else if (isIP(t.split('/')[0] ?? '') === 0 && t.lastIndexOf(':') > 0) {
    cidr = t.slice(0, t.lastIndexOf(':'));
    ports = t.slice(t.lastIndexOf(':') + 1);
  }
  return { text: t, cidr, nets: new NetSet([cidr]), ports: PortSet.parse(ports) };
}
