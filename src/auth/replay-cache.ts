/**
 * Remembers handshake seeds for `ttlMs` so a captured handshake cannot be replayed (SPEC §4:
 * "Seeds seen recently are remembered and a replay is refused"). Bounded: past `max` entries
 * the oldest are forgotten first. A Map keeps insertion order, which is expiry order here.
 */
export class ReplayCache {
  readonly #seen = new Map<string, number>();
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(ttlMs: number, max: number, now: () => number = Date.now) {
    this.#ttlMs = ttlMs;
    this.#max = max;
    this.#now = now;
  }

  /** Returns false if the seed was seen within the TTL; otherwise records it. */
  check(seed: Buffer): boolean {
    const now = this.#now();
    for (const [k, t] of this.#seen) {
      if (now - t < this.#ttlMs && this.#seen.size < this.#max) break;
      this.#seen.delete(k);
    }
    const key = seed.toString('base64');
    if (this.#seen.has(key)) return false;
    this.#seen.set(key, now);
    return true;
  }

  /** Whether the seed was recorded within the TTL (records nothing). */
  has(seed: Buffer): boolean {
    const t = this.#seen.get(seed.toString('base64'));
    return t !== undefined && this.#now() - t < this.#ttlMs;
  }

  get size(): number {
    return this.#seen.size;
  }
}
