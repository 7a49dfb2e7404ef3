/**
 * The relay's pairing table (hbbr `make_pair_`, relay_server.rs): two connections that sent a
 * RequestRelay with the same `uuid` become the two ends of one relayed pipe. Pure bookkeeping:
 * no sockets, no timers, an injected clock; the server sweeps it on its own timer.
 *
 * What hbbr does, and what this table does differently:
 * - hbbr: the first connection with a uuid is parked in a map for 30 s (`sleep(30)` then
 *   `remove(uuid)`); the next connection with that uuid takes it out and the two are paired. There is
 *   no role: whoever comes first waits. Here: the same.
 * - hbbr: once paired, the uuid is free again, so a third connection with the uuid of a live pair is
 *   parked as a new waiting half (and a fourth would pair with it). Worse, the first half's
 *   `remove(uuid)` 30 s later removes whatever is parked under that uuid by then, cutting a later
 *   half's wait short. Here: a uuid stays taken while its pair lives (`uuid_in_use`; a stock client
 *   makes a fresh v4 uuid for every relay attempt, so only a stray or hostile connection meets
 *   this), and an expiry removes only the half it was set for.
 * - hbbr has no limits. Here: the waiting halves are capped in total and per source IP, and the
 *   live pairs in total; each refusal has its own reason.
 */

/** Why a half was not accepted into the table. */
export type PairingRefusal = 'pending_full' | 'pending_per_ip' | 'paired_full' | 'uuid_in_use';

export interface RelayPairingInit {
  /** How long the first half waits for the second (hbbr: 30 s). */
  pairTimeoutMs: number;
  /** Waiting halves over all sources. */
  maxPending: number;
  /** Waiting halves one source IP may hold, so one address cannot fill the table. */
  maxPendingPerIp: number;
  /** Live pairs (their uuids stay taken until `release`). */
  maxPaired: number;
  now?: () => number;
}

interface Waiting<T> {
  half: T;
  ip: string;
  deadline: number;
}

export type OfferResult<T> =
  | { kind: 'waiting' }
  | { kind: 'paired'; first: T; firstIp: string }
  | { kind: 'refused'; reason: PairingRefusal };

export class RelayPairing<T> {
  readonly #init: RelayPairingInit;
  readonly #now: () => number;
  /** Insertion order is deadline order (one timeout, a monotonic-enough clock): sweep stops early. */
  readonly #waiting = new Map<string, Waiting<T>>();
  readonly #perIp = new Map<string, number>();
  readonly #paired = new Set<string>();

  constructor(init: RelayPairingInit) {
    for (const k of ['pairTimeoutMs', 'maxPending', 'maxPendingPerIp', 'maxPaired'] as const) {
      if (!Number.isSafeInteger(init[k]) || init[k] < 0) throw new RangeError(`${k} must be a non-negative integer, got ${init[k]}`);
    }
    this.#init = init;
    this.#now = init.now ?? Date.now;
  }

  /** Halves waiting for their partner. */
  get pending(): number {
    return this.#waiting.size;
  }

  /** Live pairs. */
  get paired(): number {
    return this.#paired.size;
  }

  /** Waiting halves from `ip`. */
  pendingFrom(ip: string): number {
    return this.#perIp.get(ip) ?? 0;
  }

  /**
   * A connection from `ip` asked to be relayed under `uuid`: it pairs with the half waiting under
   * that uuid (which leaves the table; the uuid is then taken until `release`), or waits itself,
   * or is refused.
   */
  offer(uuid: string, ip: string, half: T): OfferResult<T> {
    const w = this.#waiting.get(uuid);
    if (w) {
      if (this.#paired.size >= this.#init.maxPaired) return { kind: 'refused', reason: 'paired_full' };
      this.#remove(uuid, w);
      this.#paired.add(uuid);
      return { kind: 'paired', first: w.half, firstIp: w.ip };
    }
    if (this.#paired.has(uuid)) return { kind: 'refused', reason: 'uuid_in_use' };
    if (this.#waiting.size >= this.#init.maxPending) return { kind: 'refused', reason: 'pending_full' };
    if (this.pendingFrom(ip) >= this.#init.maxPendingPerIp) return { kind: 'refused', reason: 'pending_per_ip' };
    this.#waiting.set(uuid, { half, ip, deadline: this.#now() + this.#init.pairTimeoutMs });
    this.#perIp.set(ip, this.pendingFrom(ip) + 1);
    return { kind: 'waiting' };
  }

  /** A waiting half went away (closed before its partner came); false if it was not waiting. */
  withdraw(uuid: string, half: T): boolean {
    const w = this.#waiting.get(uuid);
    if (!w || w.half !== half) return false;
    this.#remove(uuid, w);
    return true;
  }

  /** The pair under `uuid` ended: the uuid may be used again. */
  release(uuid: string): void {
    this.#paired.delete(uuid);
  }

  /** Removes and returns the waiting halves whose time is up, for the owner to close. */
  sweep(): T[] {
    const now = this.#now();
    const expired: T[] = [];
    for (const [uuid, w] of this.#waiting) {
      if (w.deadline > now) break;
      this.#remove(uuid, w);
      expired.push(w.half);
    }
    return expired;
  }

  #remove(uuid: string, w: Waiting<T>): void {
    this.#waiting.delete(uuid);
    const n = this.pendingFrom(w.ip) - 1;
    if (n > 0) this.#perIp.set(w.ip, n);
    else this.#perIp.delete(w.ip);
  }
}
