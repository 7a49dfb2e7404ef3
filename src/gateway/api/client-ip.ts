import { isIP } from 'node:net';
import { normalizeIp } from '../../protocol/address.ts';
import type { NetSet } from '../../util/cidr.ts';

/**
 * The client's IP for grants (SPEC §6): the socket peer, unless that peer is a configured trusted
 * proxy, in which case the right-most address in X-Forwarded-For (or Forwarded: for=) that is not
 * itself a trusted proxy. Headers from anyone else are ignored, so they cannot be spoofed.
 */
export function clientIp(peer: string | undefined, headers: Headers, trusted: NetSet | null): string {
  const direct = normalizeIp(peer);
  if (!trusted || !trusted.has(direct)) return direct;
  const chain: string[] = [];
  const fwd = headers.get('forwarded');
  if (fwd) {
    for (const m of fwd.matchAll(/for=("[^"]*"|[^;,\s]+)/gi)) chain.push(stripPort(m[1]!.replace(/"/g, '')));
  } else {
    const xff = headers.get('x-forwarded-for');
    if (xff) chain.push(...xff.split(',').map((s) => s.trim()).filter(Boolean));
  }
  for (let i = chain.length - 1; i >= 0; i--) {
    const ip = normalizeIp(chain[i]);
    if (isIP(ip) === 0) return direct;
    if (!trusted.has(ip)) return ip;
  }
  return direct;
}

/** "[2001:db8::1]:4711" → "2001:db8::1"; "192.0.2.1:80" → "192.0.2.1"; a bare address stays. */
function stripPort(v: string): string {
  const b = /^\[([^\]]+)\]/.exec(v);
  if (b) return b[1]!;
  if (isIP(v) === 0 && /^[\d.]+:\d+$/.test(v)) return v.slice(0, v.lastIndexOf(':'));
  return v;
}
