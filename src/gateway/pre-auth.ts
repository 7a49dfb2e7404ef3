/** Why a connection was turned away before it could authenticate. */
export type PreAuthRefusal = 'overload' | 'per_ip';

export interface PreAuthInit {
  /** Connections (and link streams) not yet authenticated, over all sources. */
  max: number;
  /** The share of `max` one source address may hold, so one address cannot lock others out. */
  maxPerIp: number;
  /** From admission to authentication, whatever the steps in between (SPEC §2 `handshake`). */
  deadlineMs: number;
  now?: () => number;
}

interface Entry {
  ip: string;
  deadline: number;
  onExpire: () => void;
}

/**
 * Everything on serv_port that has not authenticated yet, counted in one place: plain sockets,
 * link sockets mid-handshake and link streams waiting for their first request. Pure bookkeeping
 * (clock injected, no timers): the owner calls `sweep()` on its own timer, so one timer serves
 * every pending connection and the deadline holds however many arrive.
 */
export class PreAuthGate {
  readonly #init: PreAuthInit;
  readonly #now: () => number;
  readonly #entries = new Map<object, Entry>();
  readonly #perIp = new Map<string, number>();

  constructor(init: PreAuthInit) {
    this.#init = init;
    this.#now = init.now ?? Date.now;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** How many pending entries `ip` holds. */
  heldBy(ip: string): number {
    return this.#perIp.get(ip) ?? 0;
  }

  /**
   * Admits `key` from `ip` with a fresh deadline, or says why not. `onExpire` runs (once) if it is
   * still pending at its deadline; the entry is gone by then.
   */
  admit(key: object, ip: string, onExpire: () => void): PreAuthRefusal | null {
    if (this.#entries.size >= this.#init.max) return 'overload';
    if (this.heldBy(ip) >= this.#init.maxPerIp) return 'per_ip';
    this.#add(key, { ip, deadline: this.#now() + this.#init.deadlineMs, onExpire });
    return null;
  }

  /**
   * Moves a pending entry to a new key (a link socket whose handshake produced a stream), keeping
   * its source and its deadline: the handshake deadline covers every step up to authentication.
   */
  transfer(from: object, to: object, onExpire: () => void): boolean {
    const e = this.#entries.get(from);
    if (!e) return false;
    this.#entries.delete(from);
    this.#entries.set(to, { ip: e.ip, deadline: e.deadline, onExpire });
    return true;
  }

  /** The entry authenticated, failed or closed: it no longer counts. */
  release(key: object): void {
    const e = this.#entries.get(key);
    if (!e) return;
    this.#entries.delete(key);
    const n = this.heldBy(e.ip) - 1;
    if (n > 0) this.#perIp.set(e.ip, n);
    else this.#perIp.delete(e.ip);
  }

  pending(key: object): boolean {
    return this.#entries.has(key);
  }

  /** Expires every entry past its deadline; returns how many. */
  sweep(): number {
    const now = this.#now();
    const due: Entry[] = [];
    for (const [key, e] of this.#entries) {
      if (now >= e.deadline) {
        this.release(key);
        due.push(e);
      }
    }
    for (const e of due) e.onExpire();
    return due.length;
  }

  /** Expires everything (shutdown). */
  clear(): void {
    const all = [...this.#entries.values()];
    this.#entries.clear();
    this.#perIp.clear();
    for (const e of all) e.onExpire();
  }

  #add(key: object, e: Entry): void {
    this.#entries.set(key, e);
    this.#perIp.set(e.ip, this.heldBy(e.ip) + 1);
  }
}
