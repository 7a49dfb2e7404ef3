/**
 * A token bucket per key (a source address): `take(key)` is true while the key has a token left.
 * Each key starts with `burst` tokens and regains `perSecond` a second, up to `burst`. The table
 * holds at most `maxKeys` keys; a new key beyond drops the least recently used one (which only
 * ever gives that key a fresh bucket, never holds back anyone else).
 */
interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  readonly #perMs: number;
  readonly #burst: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  /** Insertion order = least recently used first (a bucket is re-inserted when used). */
  readonly #buckets = new Map<string, Bucket>();

  constructor(perSecond: number, burst: number, maxKeys = 100_000, now: () => number = Date.now) {
    this.#perMs = perSecond / 1000;
    this.#burst = burst;
    this.#maxKeys = maxKeys;
    this.#now = now;
  }

  get size(): number {
    return this.#buckets.size;
  }

  take(key: string): boolean {
    const now = this.#now();
    let b = this.#buckets.get(key);
    if (b) {
      this.#buckets.delete(key);
      b.tokens = Math.min(this.#burst, b.tokens + (now - b.at) * this.#perMs);
      b.at = now;
    } else {
      if (this.#buckets.size >= this.#maxKeys) {
        const oldest = this.#buckets.keys().next();
        if (!oldest.done) this.#buckets.delete(oldest.value);
      }
      b = { tokens: this.#burst, at: now };
    }
    this.#buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
