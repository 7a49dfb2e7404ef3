import { AllowFlag, bytesToIp, decodeAllowlist } from '../protocol/index.ts';
import { NetSet } from '../util/cidr.ts';

/** The most rules the gateway keeps for one agent; a longer list is not judged by (MAX_TOLD_RULES at the agent). */
export const MAX_KEPT_RULES = 4096;

export type AllowVerdict =
  | { verdict: 'allowed' }
  | { verdict: 'refused'; reason: string }
  /** The gateway cannot tell: `why` says so, for a warning. */
  | { verdict: 'unknown'; why: string };

interface Rule {
  text: string;
  nets: NetSet;
  ports: readonly (readonly [number, number])[];
}

type State = 'waiting' | 'receiving' | 'known' | 'not_told' | 'too_long';

/**
 * An agent's allowlist as the gateway learns it (ALLOWLIST frames, docs/protocol.md), to refuse
 * at request time a target the agent would refuse when the connection comes. An agent that does
 * not tell it (older, or seed-only) leaves the gateway unable to check, and it says so instead.
 */
export class AgentAllowlist {
  #state: State = 'waiting';
  readonly #rules: Rule[] = [];

  /** HELLO was exchanged: an agent that did not offer ALLOWLIST will not tell its list. */
  negotiated(told: boolean): void {
    if (!told && this.#state === 'waiting') this.#state = 'not_told';
  }

  /**
   * One ALLOWLIST frame's parameters; true when it completed the list. A malformed one throws a
   * PayloadError (a protocol error). Frames after the last are ignored: the list is told once per link.
   */
  feed(params: Buffer): boolean {
    const f = decodeAllowlist(params);
    if (this.#state === 'known' || this.#state === 'not_told' || this.#state === 'too_long') return false;
    if (f.flags & AllowFlag.INCOMPLETE) this.#state = 'too_long';
    else {
      this.#state = 'receiving';
      for (const r of f.rules) {
        if (this.#rules.length >= MAX_KEPT_RULES) {
          this.#state = 'too_long';
          break;
        }
        const cidr = `${bytesToIp(r.address)}/${r.prefix}`;
        const ports = r.ports.length === 1 && r.ports[0]![0] === 1 && r.ports[0]![1] === 65535 ? '*' : r.ports.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`)).join(',');
        this.#rules.push({ text: r.address.length === 16 ? `[${cidr}]:${ports}` : `${cidr}:${ports}`, nets: new NetSet([cidr]), ports: r.ports });
      }
    }
    if (this.#state === 'too_long') {
      this.#rules.length = 0;
      return false;
    }
    if (f.flags & AllowFlag.LAST) {
      this.#state = 'known';
      return true;
    }
    return false;
  }

  /** The rules as CIDR:PORTS text once the agent has told them all; null while the gateway cannot check. */
  rules(): string[] | null {
    return this.#state === 'known' ? this.#rules.map((r) => r.text) : null;
  }

  check(host: string, port: number): AllowVerdict {
    switch (this.#state) {
      case 'known': {
        if (this.#rules.some((r) => r.nets.has(host) && r.ports.some(([lo, hi]) => port >= lo && port <= hi))) return { verdict: 'allowed' };
        const shown = this.#rules.slice(0, 8).map((r) => r.text).join(', ') + (this.#rules.length > 8 ? ', …' : '');
        return { verdict: 'refused', reason: `the agent allows only ${shown || 'nothing'} (its lan_nets)` };
      }
      case 'not_told': return { verdict: 'unknown', why: 'the agent does not tell its allowlist (an older or seed-only agent)' };
      case 'too_long': return { verdict: 'unknown', why: `the agent's allowlist is longer than the gateway checks (${MAX_KEPT_RULES} rules)` };
      default: return { verdict: 'unknown', why: 'the agent has not told its allowlist yet (it is logging in, or does not tell it)' };
    }
  }
}
