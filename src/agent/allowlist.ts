import { parseNetRule, type NetRule } from '../util/cidr.ts';

/**
 * What this agent will dial (SPEC §2: "the agent decides what it exposes"). A gateway that asks
 * for anything else gets CLS, so a compromised gateway cannot reach the whole LAN.
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
}
