import type { Clock, LinkTimer } from '../../src/link/clock.ts';

/** A Clock whose time moves only when the test says so; timers fire in due order inside advance(). */
export class FakeClock implements Clock {
  #now = 1_000_000;
  readonly #timers = new Set<FakeTimer>();

  now = (): number => this.#now;

  timer(fn: () => void): LinkTimer {
    return new FakeTimer(this.#timers, fn, () => this.#now);
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = this.timer(() => { t.dispose(); resolve(); });
      t.start(ms);
    });
  }

  /** Timers armed now. */
  get armed(): number {
    let n = 0;
    for (const t of this.#timers) if (t.running) n++;
    return n;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way, in order. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let next: FakeTimer | null = null;
      for (const t of this.#timers) if (t.running && t.due <= target && (!next || t.due < next.due)) next = t;
      if (!next) break;
      this.#now = Math.max(this.#now, next.due);
      next.fire();
    }
    this.#now = target;
  }
}

class FakeTimer implements LinkTimer {
  running = false;
  due = 0;
  readonly #set: Set<FakeTimer>;
  readonly #fn: () => void;
  readonly #now: () => number;

  constructor(set: Set<FakeTimer>, fn: () => void, now: () => number) {
    this.#set = set;
    this.#fn = fn;
    this.#now = now;
    set.add(this);
  }

  start(ms: number): void {
    this.running = true;
    this.due = this.#now() + ms;
  }
  stop(): void {
    this.running = false;
  }
  dispose(): void {
    this.running = false;
    this.#set.delete(this);
  }
  fire(): void {
    this.running = false;
    this.#fn();
  }
}
