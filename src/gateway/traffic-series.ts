/** One point of the dashboard's charts: rates over the interval that ended at `t`. */
export interface TrafficSample {
  /** Unix ms at the end of the interval. */
  t: number;
  /** Bytes per second, client → target and back, over the interval. */
  up: number;
  down: number;
  /** Live sessions at `t`. */
  sessions: number;
}

export interface TrafficTotals {
  /** Bytes moved since start, ended sessions and live ones together (never decreasing). */
  up: number;
  down: number;
  sessions: number;
}

/**
 * The gateway's own throughput and session-count series for the last hour (docs/dashboard.md):
 * a ring of `capacity` samples taken every `intervalMs` from running byte totals. Fixed memory
 * (720 samples of four numbers by default); no timer of its own — the gateway's sweep calls
 * observe() and a sample is taken when the interval has passed.
 */
export class TrafficSeries {
  readonly intervalMs: number;
  readonly capacity: number;
  readonly #ring: TrafficSample[] = [];
  #head = 0;
  #last: { t: number; up: number; down: number } | null = null;

  constructor(intervalMs = 5000, capacity = 720) {
    if (capacity < 1 || intervalMs <= 0) throw new RangeError('TrafficSeries needs capacity ≥ 1 and a positive interval');
    this.intervalMs = intervalMs;
    this.capacity = capacity;
  }

  /** Takes a sample if `intervalMs` has passed since the last one; true if it did. */
  observe(now: number, totals: TrafficTotals): boolean {
    const last = this.#last;
    if (last === null) {
      this.#last = { t: now, up: totals.up, down: totals.down };
      return false;
    }
    const dt = now - last.t;
    if (dt < this.intervalMs) return false;
    const rate = (a: number, b: number): number => Math.max(0, Math.round(((a - b) * 1000) / dt));
    this.#push({ t: now, up: rate(totals.up, last.up), down: rate(totals.down, last.down), sessions: totals.sessions });
    this.#last = { t: now, up: totals.up, down: totals.down };
    return true;
  }

  #push(s: TrafficSample): void {
    if (this.#ring.length < this.capacity) this.#ring.push(s);
    else {
      this.#ring[this.#head] = s;
      this.#head = (this.#head + 1) % this.capacity;
    }
  }

  /** Oldest first. */
  samples(): TrafficSample[] {
    return [...this.#ring.slice(this.#head), ...this.#ring.slice(0, this.#head)];
  }

  latest(): TrafficSample | null {
    if (this.#ring.length === 0) return null;
    return this.#ring[(this.#head + this.#ring.length - 1) % this.#ring.length] ?? null;
  }
}
