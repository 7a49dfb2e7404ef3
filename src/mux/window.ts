import { FlowControlError } from '../protocol/errors.ts';

/**
 * Credit accounting for one direction of one session (pure; no I/O). The receiver grants the
 * sender `window` bytes at open; as the receiver's consumer drains bytes it grants more, so
 * at most `window` bytes are ever in flight or buffered at the receiver.
 */
export class RecvWindow {
  readonly window: number;
  #received = 0;
  #granted: number;

  constructor(window: number) {
    this.window = window;
    this.#granted = window;
  }

  get received(): number {
    return this.#received;
  }

  /** Records `n` bytes received; a peer that overruns its credit breaks the protocol. */
  receive(session: number, n: number): void {
    this.#received += n;
    if (this.#received > this.#granted) throw new FlowControlError(session, this.#received - this.#granted);
  }

  /**
   * Given the total bytes the consumer has taken so far, returns the credit to send now (0 for
   * none). Credit goes out once the peer's remaining allowance fell to half the window or less,
   * so a steady stream costs one CREDIT frame per window/2 bytes.
   */
  consumed(total: number): number {
    const target = Math.min(total, this.#received) + this.window;
    const grant = target - this.#granted;
    if (grant < this.window / 2) return 0;
    this.#granted = target;
    return grant;
  }
}

/** The sender's view: how many bytes it may still send. */
export class SendCredit {
  #credit: number;

  constructor(initial: number) {
    this.#credit = initial;
  }

  get available(): number {
    return this.#credit;
  }

  take(n: number): void {
    if (n > this.#credit) throw new RangeError(`take ${n} > credit ${this.#credit}`);
    this.#credit -= n;
  }

  grant(n: number): void {
    this.#credit += n;
  }
}
