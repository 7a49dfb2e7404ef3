import { FlowControlError } from '../protocol/errors.ts';

/**
 * Credit accounting for one direction of one session (pure; no I/O). The receiver grants the
 * sender `window` bytes at open; as the receiver's consumer drains bytes it grants more, so
 * at most `window` bytes are ever in flight or buffered at the receiver.
 *
 * The window tunes itself to bandwidth × delay, up to `max`, the way QUIC receivers do. The
 * delay is the credit round trip: from a grant to the first byte beyond the limit it raised,
 * counted only when the sender had spent its credit up to that limit (so it waited for the
 * grant; a sender slower than the path would otherwise pass for a long delay), and the least
 * such sample is kept. A window
 * smaller than twice the flow's bandwidth × that delay makes the sender wait for credit; the
 * receiver sees it as half a window arriving in less than that delay, and doubles the window at
 * the next grant. A consumer that fell behind since the last grant (bytes received but not yet
 * taken) is the flow's limit itself, and its window stays as it is: a slow or stalled reader
 * never makes the receiver hold more than its current window.
 */
export class RecvWindow {
  #window: number;
  readonly max: number;
  readonly #clock: () => number;
  #received = 0;
  #granted: number;
  /** The consumer held bytes it had not taken at some report since the last grant. */
  #lagged = false;
  /** The last grant: when, the consumer's total then, and the limit it raised (for the delay sample). */
  #grantAt: number;
  #takenAtGrant = 0;
  #sampleLimit = -1;
  #sampleAt = 0;
  #sampleWaited = false;
  /** The least credit round trip seen (ms); Infinity until the first sample. */
  #delay = Infinity;

  constructor(window: number, max = window, clock: () => number = performance.now.bind(performance)) {
    this.#window = window;
    this.max = Math.max(window, max);
    this.#clock = clock;
    this.#granted = window;
    this.#grantAt = clock();
  }

  /** The current window: the most bytes the sender may have outstanding. */
  get window(): number {
    return this.#window;
  }
  get received(): number {
    return this.#received;
  }
  /** The least credit round trip measured so far, in ms (Infinity before the first). */
  get delay(): number {
    return this.#delay;
  }

  /** Records `n` bytes received; a peer that overruns its credit breaks the protocol. */
  receive(session: number, n: number): void {
    this.#received += n;
    if (this.#received > this.#granted) throw new FlowControlError(session, this.#received - this.#granted);
    if (this.#sampleLimit >= 0) {
      if (this.#received === this.#sampleLimit) {
        this.#sampleWaited = true; // the sender spent its credit up to the old limit: it waits for the grant
      } else if (this.#received > this.#sampleLimit) {
        if (this.#sampleWaited) this.#delay = Math.min(this.#delay, this.#clock() - this.#sampleAt);
        this.#sampleLimit = -1;
      }
    }
  }

  /**
   * Given the total bytes the consumer has taken so far, returns the credit to send now (0 for
   * none). Credit goes out once the peer's remaining allowance fell to half the window or less,
   * so a steady stream costs one CREDIT frame per window/2 bytes.
   */
  consumed(total: number): number {
    const taken = Math.min(total, this.#received);
    if (taken < this.#received) this.#lagged = true;
    if (taken + this.#window - this.#granted < this.#window / 2) return 0;
    const now = this.#clock();
    if (!this.#lagged && this.#window < this.max && this.#delay < Infinity) {
      // Half a window or more arrived in this epoch; at this rate the sender needs 2 × rate × delay.
      const elapsed = now - this.#grantAt;
      if (elapsed < (2 * (taken - this.#takenAtGrant) * this.#delay) / this.#window) this.#window = Math.min(this.#window * 2, this.max);
    }
    this.#lagged = false;
    if (this.#sampleLimit < 0) {
      this.#sampleLimit = this.#granted;
      this.#sampleAt = now;
      this.#sampleWaited = this.#received === this.#granted;
    }
    this.#grantAt = now;
    this.#takenAtGrant = taken;
    const target = taken + this.#window;
    const grant = target - this.#granted;
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
