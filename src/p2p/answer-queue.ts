/**
 * Requests waiting for answers that come back in the order the requests were sent (the gateway
 * answers dk connect's relay and punch requests that way, over a link that loses nothing). Pure:
 * no timers or sockets; the owner says when it gives up on a request.
 *
 * A request given up on keeps its place until its late answer arrives, and that answer is dropped:
 * taking the request out would hand its answer to the next one (a relay token for a punch, or one
 * request's token to another).
 */
export interface Waiter<K, V> {
  readonly kind: K;
  settle(result: { ok: true; value: V } | { ok: false; error: Error }): void;
}

export class AnswerQueue<K, V> {
  readonly max: number;
  readonly #waiting: { waiter: Waiter<K, V>; gaveUp: boolean }[] = [];

  constructor(max: number) {
    this.max = max;
  }

  get length(): number {
    return this.#waiting.length;
  }

  /** Queues a request; false when `max` are waiting already (the peer has stopped answering). */
  push(waiter: Waiter<K, V>): { giveUp(error: Error): void } | null {
    if (this.#waiting.length >= this.max) return null;
    const entry = { waiter, gaveUp: false };
    this.#waiting.push(entry);
    return {
      giveUp: (error) => {
        if (entry.gaveUp) return;
        entry.gaveUp = true;
        waiter.settle({ ok: false, error });
      },
    };
  }

  /**
   * The next answer: `kind` and its value, or an error the peer answered with. It settles the oldest
   * request unless that one was given up on; an answer of another kind than asked is an error.
   */
  answer(a: { kind: K; value: V } | { error: Error }): void {
    const entry = this.#waiting.shift();
    if (!entry || entry.gaveUp) return;
    entry.gaveUp = true;
    if ('error' in a) entry.waiter.settle({ ok: false, error: a.error });
    else if (a.kind !== entry.waiter.kind) entry.waiter.settle({ ok: false, error: new Error(`the answer is ${String(a.kind)}, not ${String(entry.waiter.kind)}`) });
    else entry.waiter.settle({ ok: true, value: a.value });
  }

  /** Every request fails with `error` (the channel is gone). */
  failAll(error: Error): void {
    for (const entry of this.#waiting.splice(0)) {
      if (entry.gaveUp) continue;
      entry.gaveUp = true;
      entry.waiter.settle({ ok: false, error });
    }
  }
}
