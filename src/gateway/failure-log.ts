export interface FailureLogInit {
  /** Writes one line; `fields` carries source, count and reasons. */
  write: (fields: { source: string; count: number; reasons: Record<string, number>; first: boolean }, msg: string) => void;
  /** One line per source per interval at most. */
  intervalMs: number;
  /** Sources tracked at once; failures from further sources are summed under "other". */
  maxSources?: number;
  now?: () => number;
}

interface Tally {
  count: number;
  reasons: Record<string, number>;
}

const OTHER = 'other';
/** Distinct reasons kept per source and interval (a reason may name a user an attacker chose). */
const MAX_REASONS = 16;

/**
 * Log lines for unauthenticated failures, aggregated per source: the first failure from a source
 * is logged at once; the rest within the interval are counted and written as one line when the
 * interval ends (`flush()`, called by the owner's timer). An attacker who fails a million times
 * writes a line per interval, not a million lines. Memory is bounded by `maxSources`.
 */
export class FailureLog {
  readonly #init: FailureLogInit;
  readonly #max: number;
  readonly #pending = new Map<string, Tally>();
  /** Sources that already had their immediate line in the current interval. */
  readonly #seen = new Set<string>();
  #lastFlush: number;
  readonly #now: () => number;

  constructor(init: FailureLogInit) {
    this.#init = init;
    this.#max = init.maxSources ?? 10_000;
    this.#now = init.now ?? Date.now;
    this.#lastFlush = this.#now();
  }

  fail(source: string, reason: string): void {
    this.tick();
    if (!this.#seen.has(source) && this.#seen.size < this.#max) {
      this.#seen.add(source);
      this.#init.write({ source, count: 1, reasons: { [reason]: 1 }, first: true }, 'authentication failed');
      return;
    }
    const key = this.#seen.has(source) ? source : OTHER;
    let t = this.#pending.get(key);
    if (!t) this.#pending.set(key, t = { count: 0, reasons: {} });
    t.count++;
    const r = reason in t.reasons || Object.keys(t.reasons).length < MAX_REASONS ? reason : OTHER;
    t.reasons[r] = (t.reasons[r] ?? 0) + 1;
  }

  /** Ends the interval if it is over (the owner calls this on its own timer, so counts are written even after the failures stop). */
  tick(): void {
    if (this.#now() - this.#lastFlush >= this.#init.intervalMs) this.flush();
  }

  /** Writes one line per source that failed again since its last line, and starts a new interval. */
  flush(): void {
    const seconds = Math.round((this.#now() - this.#lastFlush) / 1000);
    this.#lastFlush = this.#now();
    for (const [source, t] of this.#pending) {
      this.#init.write({ source, count: t.count, reasons: t.reasons, first: false }, `authentication failed ${t.count} more times in ${seconds} s`);
    }
    // A source that failed again stays "seen" (its next failure is counted, not logged at once);
    // a quiet one is forgotten, so its next failure is logged immediately again.
    const again = new Set(this.#pending.keys());
    for (const s of this.#seen) if (!again.has(s)) this.#seen.delete(s);
    this.#pending.clear();
  }
}
