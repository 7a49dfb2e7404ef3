/**
 * A connection's deadline for its next complete message: `expectWithin(ms)` (re)arms it, and when
 * it passes `onExpire` runs (the owner destroys the connection). Unlike a socket timeout, neither
 * a partial frame nor what the server writes (heartbeats) pushes it back; only the owner does,
 * when a whole message has arrived.
 */
export class Deadline {
  readonly #onExpire: () => void;
  #timer: NodeJS.Timeout | null = null;
  #ms = 0;

  constructor(onExpire: () => void) {
    this.#onExpire = onExpire;
  }

  expectWithin(ms: number): void {
    if (this.#timer !== null && this.#ms === ms) return void this.#timer.refresh();
    this.stop();
    this.#ms = ms;
    this.#timer = setTimeout(this.#onExpire, ms);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
