/**
 * Failed-authentication limiter per source IP (SPEC §6): more than `limit` failures within
 * `windowMs` blocks that IP until the window has passed. Memory is bounded: at most `maxIps`
 * addresses are tracked, the oldest forgotten first.
 */
export class FailureLimiter {
  readonly #fails = new Map<string, number[]>();
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #maxIps: number;
  readonly #now: () => number;

  constructor(limit: number, windowMs: number, maxIps = 10_000, now: () => number = Date.now) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#maxIps = maxIps;
    this.#now = now;
  }

  #recent(ip: string): number[] {
    const cutoff = this.#now() - this.#windowMs;
    const list = (this.#fails.get(ip) ?? []).filter((t) => t > cutoff);
    if (list.length === 0) this.#fails.delete(ip);
    else this.#fails.set(ip, list);
    return list;
  }

  /** Seconds to wait before trying again, or 0 if this IP may try now. */
  retryAfter(ip: string): number {
    const list = this.#recent(ip);
    if (list.length < this.#limit) return 0;
    return Math.max(1, Math.ceil((list[0]! + this.#windowMs - this.#now()) / 1000));
  }

  fail(ip: string): void {
    const list = this.#recent(ip);
    list.push(this.#now());
    this.#fails.delete(ip);
    this.#fails.set(ip, list.slice(-this.#limit));
    while (this.#fails.size > this.#maxIps) this.#fails.delete(this.#fails.keys().next().value!);
  }
}
