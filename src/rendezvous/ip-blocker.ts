/**
 * hbbs's IP blocker for RegisterPk (rendezvous_server.rs check_ip_blocker, FACTS §5.1), with a
 * cap on the addresses it tracks:
 *
 * - per source IP (an IPv6 source per /64, sourceKey), a sliding one-minute window: the first call creates the entry and passes;
 *   each later pass counts one, and the count restarts only after a minute without a passing
 *   call; past `perMinute` (30) calls are refused. So 32 RegisterPk pass, then TOO_FREQUENT until
 *   a minute of quiet.
 * - per source IP, at most `idsPerDay` (300) distinct ids in a sliding day: a new id beyond is
 *   refused, ids already seen pass.
 *
 * hbbs never forgets an address; here the table holds at most `maxIps` addresses and `maxIds` ids
 * over all of them, and drops the longest-unused address to make room (an address that is forgotten starts afresh, which only ever
 * lets a flooding source through once more per eviction, never blocks an honest one).
 */
import { sourceKey } from './source-key.ts';

export interface IpBlockerLimits {
  perMinute: number;
  idsPerDay: number;
  maxIps: number;
  /** Ids remembered over all addresses: many addresses (IPv6) × idsPerDay must not grow memory without bound. */
  maxIds: number;
}

export const DEFAULT_IP_BLOCKER: IpBlockerLimits = { perMinute: 30, idsPerDay: 300, maxIps: 100_000, maxIds: 1_000_000 };

interface Entry {
  count: number;
  countAt: number;
  ids: Set<string>;
  idsAt: number;
}

const MINUTE = 60_000;
const DAY = 86_400_000;

export class IpBlocker {
  readonly #limits: IpBlockerLimits;
  readonly #now: () => number;
  /** Insertion order = least recently used first (an entry is re-inserted when used). */
  readonly #entries = new Map<string, Entry>();
  #ids = 0;

  constructor(limits: Partial<IpBlockerLimits> = {}, now: () => number = Date.now) {
    this.#limits = { ...DEFAULT_IP_BLOCKER, ...limits };
    this.#now = now;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** True if a RegisterPk for `id` from `ip` may go on; false means TOO_FREQUENT. */
  check(address: string, id: string): boolean {
    const ip = sourceKey(address);
    const now = this.#now();
    const e = this.#entries.get(ip);
    if (!e) {
      if (this.#entries.size >= this.#limits.maxIps) this.#evictOldest();
      this.#entries.set(ip, { count: 0, countAt: now, ids: new Set(), idsAt: now });
      return true;
    }
    this.#entries.delete(ip);
    this.#entries.set(ip, e);
    if (now - e.countAt > MINUTE) e.count = 0;
    else if (e.count > this.#limits.perMinute) return false;
    e.count++;
    e.countAt = now;
    const isNew = !e.ids.has(id);
    if (now - e.idsAt > DAY) {
      this.#ids -= e.ids.size;
      e.ids.clear();
    } else if (e.ids.size > this.#limits.idsPerDay) return !isNew;
    if (isNew) {
      e.ids.add(id);
      this.#ids++;
      while (this.#ids > this.#limits.maxIds && this.#entries.size > 1) this.#evictOldest();
    }
    e.idsAt = now;
    return true;
  }

  /** Ids remembered over all addresses. */
  get ids(): number {
    return this.#ids;
  }

  /** Forgets an address (the API's unblock, and tests). */
  forget(ip: string): boolean {
    return this.#drop(sourceKey(ip));
  }

  #evictOldest(): void {
    const oldest = this.#entries.keys().next();
    if (!oldest.done) this.#drop(oldest.value);
  }

  /** Removes the entry under a source key (already a key: not mapped again). */
  #drop(key: string): boolean {
    const e = this.#entries.get(key);
    if (e) this.#ids -= e.ids.size;
    return this.#entries.delete(key);
  }
}
