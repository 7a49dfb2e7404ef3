import { ipToBytes, type AllowRule } from '../protocol/index.ts';
import { parseCidr, parseNetRule, type NetRule } from '../util/cidr.ts';

/** The most rules an agent tells its gateway (ALLOWLIST); beyond, it says the list is incomplete. */
export const MAX_TOLD_RULES = 4096;

/**
 * What this agent will dial (SPEC §2: "the agent decides what it exposes"). A gateway that asks
 * for anything else gets CLS, so a compromised gateway cannot reach the whole LAN. The agent also
 * tells its gateway these rules (ALLOWLIST), so that the API refuses such targets up front; the
 * agent still checks every OPN itself.
 */
export class Allowlist {
  readonly rules: NetRule[];

  constructor(rules: readonly string[]) {
    this.rules = rules.map(parseNetRule);
  }

  allows(ip: string, port: number): boolean {
    return this.rules.some((r) => r.nets.has(ip) && r.ports.has(port));
  }

  /** Rules under which `port` may be dialled: what a PORT QUERY scans. */
  rulesFor(port: number): NetRule[] {
    return this.rules.filter((r) => r.ports.has(port));
  }

  /** The rules as the ALLOWLIST command carries them ("*" as both 0.0.0.0/0 and ::/0), at most MAX_TOLD_RULES. */
  toWire(): { rules: AllowRule[]; incomplete: boolean } {
    const rules: AllowRule[] = [];
    for (const r of this.rules) {
      const cidrs = r.cidr.trim() === '*' ? ['0.0.0.0/0', '::/0'] : [r.cidr];
      for (const c of cidrs) {
        const p = parseCidr(c);
        rules.push({ address: ipToBytes(p.address), prefix: p.prefix, ports: r.ports.ranges });
      }
    }
    return { rules: rules.slice(0, MAX_TOLD_RULES), incomplete: rules.length > MAX_TOLD_RULES };
  }
}
