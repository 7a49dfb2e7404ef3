import { isIPv4, isIPv6 } from 'node:net';
import { toV4IfMapped } from './addr-mangle.ts';

/**
 * The key a source is counted under by the per-address limits (connections, the RegisterPk IP
 * blocker, forwarded requests, the relay's caps): an IPv4 address as it is (v4-mapped IPv6
 * included), an IPv6 address by its /64, written `a:b:c:d::/64`. A subscriber, and so an
 * attacker, is given at least a /64 and can send from any of its 2⁶⁴ addresses; counting whole
 * IPv6 addresses would let one source past every cap.
 */
export function sourceKey(ip: string): string {
  const a = toV4IfMapped(ip);
  if (!isIPv6(a)) return a;
  return `${hextets(a).slice(0, 4).map((h) => h.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (zone dropped, a dotted IPv4 tail split in two). */
function hextets(ip: string): number[] {
  const noZone = ip.split('%')[0]!;
  const [head = '', tail] = noZone.split('::') as [string, string | undefined];
  const parse = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (isIPv4(g)) {
        const o = g.split('.').map(Number) as [number, number, number, number];
        out.push((o[0] << 8) | o[1], (o[2] << 8) | o[3]);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const h = parse(head);
  if (tail === undefined) return h;
  const t = parse(tail);
  return [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}
