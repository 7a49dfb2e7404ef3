/**
 * The values the `backend` label of the gateway's metrics may take. Only backends the gateway
 * knows (its config and database) become label values, and at most MAX_BACKEND_LABELS of them:
 * a name from a request or a peer never does, so no input can grow the number of series.
 * Anything else is counted under OTHER_BACKEND.
 */
export const MAX_BACKEND_LABELS = 256;
export const OTHER_BACKEND = '_other';

export class BackendLabels {
  readonly #allowed = new Set<string>();
  readonly #max: number;

  constructor(max = MAX_BACKEND_LABELS) {
    this.#max = max;
  }

  /** Known backends, given in a stable order (sorted names): the first `max` keep a label of their own. */
  allow(names: Iterable<string>): void {
    for (const n of names) {
      if (this.#allowed.size >= this.#max) return;
      this.#allowed.add(n);
    }
  }

  /** The label value for `name`: itself if it is an allowed backend, OTHER_BACKEND if not. */
  label(name: string): string {
    return this.#allowed.has(name) ? name : OTHER_BACKEND;
  }

  values(): IterableIterator<string> {
    return this.#allowed.values();
  }
}
