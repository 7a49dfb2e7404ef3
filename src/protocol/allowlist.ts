import { PayloadError } from './errors.ts';
import { packParamBlocks } from './param-blocks.ts';

/**
 * ALLOWLIST (CMD 7, agent → gateway, SESSION-ID 0, feature 16): what the agent will dial, sent
 * once per link right after HELLO, so that the gateway can refuse at request time what the agent
 * would refuse at connection time (docs/protocol.md, "Allowlist").
 *
 *   flags u8          1 LAST (the list is complete with this frame), 2 INCOMPLETE (the agent has
 *                     more rules than it sends: the gateway must not judge by this list)
 *   rules …           prefix u8, address length u8 (4 | 16), address,
 *                     range count u8 (≥ 1), then that many (first port u16 BE, last port u16 BE)
 *
 * A target is allowed when some rule holds its address and its port. A long list spans several
 * frames; only the last carries LAST.
 */
export const AllowFlag = { LAST: 1, INCOMPLETE: 2 } as const;

export interface AllowRule {
  address: Uint8Array;
  prefix: number;
  /** Inclusive port ranges, 1..65535. */
  ports: readonly (readonly [number, number])[];
}

export interface AllowlistFrame {
  flags: number;
  rules: AllowRule[];
}

/** The most port ranges one rule carries on the wire (a rule with more is sent as several). */
const MAX_RANGES = 255;

function ruleBytes(r: AllowRule): Buffer {
  const b = Buffer.allocUnsafe(3 + r.address.length + 4 * r.ports.length);
  b[0] = r.prefix;
  b[1] = r.address.length;
  b.set(r.address, 2);
  let off = 2 + r.address.length;
  b[off++] = r.ports.length;
  for (const [lo, hi] of r.ports) {
    b.writeUInt16BE(lo, off);
    b.writeUInt16BE(hi, off + 2);
    off += 4;
  }
  return b;
}

/** Parameter blocks for as many ALLOWLIST frames as `rules` need; the last carries LAST. */
export function encodeAllowlist(rules: readonly AllowRule[], incomplete = false): Buffer[] {
  // A rule with more port ranges than one entry holds becomes several entries for the same net.
  const entries = rules.flatMap((r) => Array.from({ length: Math.ceil(r.ports.length / MAX_RANGES) }, (_, k) =>
    ruleBytes({ ...r, ports: r.ports.slice(k * MAX_RANGES, (k + 1) * MAX_RANGES) })));
  return packParamBlocks(entries, incomplete ? AllowFlag.INCOMPLETE : 0, AllowFlag.LAST);
}

export function decodeAllowlist(p: Buffer): AllowlistFrame {
  const fail = (w: string): never => { throw new PayloadError(`ALLOWLIST: ${w}`); };
  if (p.length < 1) fail('needs a flags byte');
  const rules: AllowRule[] = [];
  let off = 1;
  while (off < p.length) {
    if (off + 2 > p.length) fail('truncated rule');
    const prefix = p[off]!;
    const len = p[off + 1]!;
    if (len !== 4 && len !== 16) fail(`address length ${len}`);
    if (prefix > len * 8) fail(`prefix ${prefix} too long`);
    if (off + 2 + len + 1 > p.length) fail('truncated address');
    const address = p.subarray(off + 2, off + 2 + len);
    off += 2 + len;
    const n = p[off++]!;
    if (n === 0) fail('a rule without ports');
    if (off + 4 * n > p.length) fail('truncated port ranges');
    const ports: [number, number][] = [];
    for (let i = 0; i < n; i++, off += 4) {
      const lo = p.readUInt16BE(off);
      const hi = p.readUInt16BE(off + 2);
      if (lo < 1 || lo > hi) fail(`port range ${lo}-${hi}`);
      ports.push([lo, hi]);
    }
    rules.push({ address, prefix, ports });
  }
  return { flags: p[0]!, rules };
}
