import { connect } from 'node:net';
import { parseCidr, type NetRule } from '../util/cidr.ts';
import { ipToBytes, bytesToIp } from '../protocol/address.ts';

export interface ScanOptions {
  concurrency: number;
  timeoutMs: number;
  maxHosts: number;
}

/**
 * Lists the addresses a PORT QUERY covers: every host of every allowed network, up to maxHosts.
 * IPv4 networks are enumerated (without network and broadcast addresses for prefixes ≤ 30);
 * IPv6 networks only when small (≥ /120), since larger ones cannot be swept.
 */
export function scanTargets(rules: readonly NetRule[], maxHosts: number): { hosts: string[]; truncated: boolean } {
  const hosts = new Set<string>();
  let truncated = false;
  for (const r of rules) {
    const c = parseCidr(r.cidr);
    if (c.family === 'ipv4') {
      const base = ipToBytes(c.address);
      const start = ((base[0]! << 24) | (base[1]! << 16) | (base[2]! << 8) | base[3]!) >>> 0;
      const size = 2 ** (32 - c.prefix);
      const net = c.prefix === 0 ? 0 : (start & (~0 << (32 - c.prefix))) >>> 0;
      const [lo, hi] = c.prefix <= 30 ? [net + 1, net + size - 2] : [net, net + size - 1];
      for (let a = lo; a <= hi; a++) {
        if (hosts.size >= maxHosts) { truncated = true; break; }
        hosts.add(`${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`);
      }
    } else if (c.prefix >= 120) {
      const base = ipToBytes(c.address);
      const size = 2 ** (128 - c.prefix);
      const first = base[15]! & ~(size - 1) & 255;
      for (let i = 0; i < size; i++) {
        if (hosts.size >= maxHosts) { truncated = true; break; }
        const b = Uint8Array.from(base);
        b[15] = first + i;
        hosts.add(bytesToIp(b));
      }
    } else {
      truncated = true;
    }
  }
  return { hosts: [...hosts], truncated };
}

/** True if a TCP connect to host:port succeeds within timeoutMs. */
export function probe(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean): void => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** A bounded, concurrent connect-scan: at most `concurrency` probes in flight. */
export async function connectScan(hosts: readonly string[], port: number, o: ScanOptions,
  probeFn: (h: string, p: number, t: number) => Promise<boolean> = probe): Promise<string[]> {
  const open: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < hosts.length) {
      const h = hosts[next++]!;
      if (await probeFn(h, port, o.timeoutMs)) open.push(h);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, hosts.length) }, worker));
  const rank = new Map(hosts.map((h, i) => [h, i]));
  return open.sort((a, b) => rank.get(a)! - rank.get(b)!);
}
