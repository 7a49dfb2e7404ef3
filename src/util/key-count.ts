/** Counts what each key (a user, an address) holds now, against a cap; forgets keys that hold nothing. */
export class KeyCount {
  readonly #held = new Map<string, number>();

  held(key: string): number {
    return this.#held.get(key) ?? 0;
  }

  /** Takes one for `key` if it holds fewer than `max`; says whether it did. */
  take(key: string, max: number): boolean {
    const n = this.held(key);
    if (n >= max) return false;
    this.#held.set(key, n + 1);
    return true;
  }

  give(key: string): void {
    const n = this.held(key) - 1;
    if (n > 0) this.#held.set(key, n);
    else this.#held.delete(key);
  }
}
