/**
 * Time for the link's state machines, injected (STYLE §5) so that LinkSession and the transport
 * adapter run under a fake clock in tests (test/link/fake-clock.ts).
 */
export interface Clock {
  /** Milliseconds, for PING stamps, RTTs and the dead timer (Date.now() semantics). */
  now(): number;
  /** A stopped one-shot timer that calls `fn`; made once per owner and restarted, never recreated per use. */
  timer(fn: () => void): LinkTimer;
  /**
   * Resolves after `ms`. Unlike timer(), this one keeps the process alive: a client between two
   * resume attempts has nothing else holding it (an agent whose gateway is down must not exit).
   */
  sleep(ms: number): Promise<void>;
}

export interface LinkTimer {
  /** (Re)arms the timer to fire `ms` from now. */
  start(ms: number): void;
  stop(): void;
  /** Stops it for good and lets go of what it holds (the owner is done with it). */
  dispose(): void;
  readonly running: boolean;
}

/**
 * A Node timer made on first start and refreshed afterwards (undici's lib/util/timers.js habit):
 * a refresh re-inserts the existing Timeout instead of allocating one. unref'd: a link alone never
 * keeps the process alive. A stopped timer is left to fire and ignored rather than cleared,
 * because a cleared Timeout cannot be refreshed; it fires at most once for nothing.
 */
class NodeTimer implements LinkTimer {
  readonly #fn: () => void;
  #t: NodeJS.Timeout | null = null;
  #ms = -1;
  running = false;

  constructor(fn: () => void) {
    this.#fn = fn;
  }

  start(ms: number): void {
    this.running = true;
    if (this.#t && ms === this.#ms) {
      this.#t.refresh();
      return;
    }
    if (this.#t) clearTimeout(this.#t);
    this.#ms = ms;
    this.#t = setTimeout(this.#fire, ms);
    this.#t.unref();
  }

  stop(): void {
    this.running = false;
  }

  dispose(): void {
    this.running = false;
    if (this.#t) clearTimeout(this.#t);
    this.#t = null;
  }

  readonly #fire = (): void => {
    if (!this.running) return;
    this.running = false;
    this.#fn();
  };
}

export const realClock: Clock = {
  now: Date.now,
  timer: (fn) => new NodeTimer(fn),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};
