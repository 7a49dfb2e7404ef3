import { isIP } from 'node:net';
import { CandidateError } from './errors.ts';

/**
 * A candidate: one address at which a peer may be reached directly (docs/p2p.md §2).
 * `public` is the mapping the coordinator observed on the peer's connection to it (the peer's NAT's
 * public address and port); `lan` is an address of one of the peer's own interfaces with the port
 * it punches from, which works when both sides share a network.
 */
export type CandidateKind = 'public' | 'lan';

export interface Candidate {
  readonly kind: CandidateKind;
  readonly host: string;
  readonly port: number;
}

/** At most this many candidates are dialled per peer: every candidate costs a socket and a SYN. */
export const MAX_CANDIDATES = 8;

/** `198.18.2.2:40000`, or `[2001:db8::1]:40000`. */
export function candidateAddress(c: Pick<Candidate, 'host' | 'port'>): string {
  return isIP(c.host) === 6 ? `[${c.host}]:${c.port}` : `${c.host}:${c.port}`;
}

/** `public 198.18.2.2:40000`: how reports name a candidate. */
export function formatCandidate(c: Candidate): string {
  return `${c.kind} ${candidateAddress(c)}`;
}

/** Node reports IPv4 peers of a dual-stack socket as `::ffff:a.b.c.d`; candidates hold the IPv4 form. */
export function unmapIPv4(host: string): string {
  return host.toLowerCase().startsWith('::ffff:') && isIP(host.slice(7)) === 4 ? host.slice(7) : host;
}

function ipv4Octets(host: string): number[] {
  return host.split('.').map(Number);
}

/**
 * Why an address must not be dialled as a candidate, or undefined when it may. Candidates come from
 * the other side, so a peer could name this host's own loopback or a broadcast address; those, the
 * unspecified and multicast ranges and IPv4 link-local are refused.
 */
export function undialable(host: string): string | undefined {
  const family = isIP(host);
  if (family === 0) return 'not an IP address';
  if (family === 4) {
    const [a, b] = ipv4Octets(host) as [number, number];
    if (a === 0) return 'unspecified';
    if (a === 127) return 'loopback';
    if (a === 169 && b === 254) return 'link-local';
    if (a >= 224) return 'multicast or reserved';
    return undefined;
  }
  const h = host.toLowerCase();
  if (h === '::' || h === '::1') return h === '::' ? 'unspecified' : 'loopback';
  if (h.startsWith('fe8') || h.startsWith('fe9') || h.startsWith('fea') || h.startsWith('feb')) return 'link-local';
  if (h.startsWith('ff')) return 'multicast';
  if (h.startsWith('::ffff:')) return 'IPv4-mapped';
  return undefined;
}

/** A candidate from untrusted input; throws CandidateError when it is not one. */
export function toCandidate(kind: CandidateKind, host: string, port: number): Candidate {
  const h = unmapIPv4(host);
  const why = undialable(h);
  if (why !== undefined) throw new CandidateError(`candidate ${host}: ${why}`);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new CandidateError(`candidate ${host}:${port}: port out of range`);
  return { kind, host: h, port };
}

export interface OrderInit {
  /** This side's own public mapping, when known: a peer behind the same public address is tried on its LAN addresses first. */
  readonly mine?: Pick<Candidate, 'host' | 'port'> | undefined;
  /** The address family this side dials from (an IPv4 socket cannot reach an IPv6 candidate). */
  readonly family: 4 | 6;
  readonly max?: number;
}

/**
 * The order in which to dial a peer's candidates (docs/p2p.md §2): undialable and other-family
 * candidates dropped; duplicates (same address and port) kept once, as their first kind with
 * `public` preferred; public before LAN, except when both sides share a public address (same NAT:
 * the router may not hairpin), then LAN first; the given order within a kind; at most `max`.
 */
export function orderCandidates(peer: readonly Candidate[], init: OrderInit): Candidate[] {
  const byAddress = new Map<string, Candidate>();
  for (const c of peer) {
    if (undialable(c.host) !== undefined || isIP(c.host) !== init.family) continue;
    if (!Number.isInteger(c.port) || c.port < 1 || c.port > 65_535) continue;
    const key = candidateAddress(c);
    const seen = byAddress.get(key);
    if (seen === undefined) byAddress.set(key, c);
    else if (seen.kind === 'lan' && c.kind === 'public') byAddress.set(key, c);
  }
  const all = [...byAddress.values()];
  const pub = all.filter((c) => c.kind === 'public');
  const lan = all.filter((c) => c.kind === 'lan');
  const sameNat = init.mine !== undefined && pub.some((c) => c.host === init.mine?.host);
  return (sameNat ? [...lan, ...pub] : [...pub, ...lan]).slice(0, init.max ?? MAX_CANDIDATES);
}
