import { slice } from './parts.ts';

/**
 * The bytes written but not yet acknowledged by the peer (seed 003's "history buffer", without its
 * flaws): it holds exactly the unacknowledged bytes — acknowledging frees them — and never
 * overwrites or drops; the stream stops taking writes while it is full.
 * Offsets are absolute stream positions from 0.
 */
export class ReplayBuffer {
  #chunks: Buffer[] = [];
  #base = 0;
  #length = 0;
  /**
   * Where the last pieces() call started: the index of a chunk and its absolute offset. The
   * sender asks for ever later offsets, so the next call walks on from here instead of from the
   * first chunk; with thousands of small unacknowledged writes (a burst of session opens) a walk
   * from the start made every record cost time proportional to the backlog.
   */
  #cursorIdx = 0;
  #cursorAt = 0;

  /** First unacknowledged offset. */
  get acked(): number {
    return this.#base;
  }
  /** One past the last byte written. */
  get end(): number {
    return this.#base + this.#length;
  }
  /** Unacknowledged bytes held. */
  get size(): number {
    return this.#length;
  }

  append(b: Buffer): void {
    if (b.length === 0) return;
    this.#chunks.push(b);
    this.#length += b.length;
  }

  /** The peer has everything before `to`; returns false if `to` lies beyond what was written. */
  ack(to: number): boolean {
    if (to > this.end) return false;
    let drop = to - this.#base;
    while (drop > 0 && this.#chunks.length > 0) {
      const c = this.#chunks[0]!;
      if (c.length <= drop) {
        this.#chunks.shift();
        drop -= c.length;
        this.#base += c.length;
        this.#length -= c.length;
        if (this.#cursorIdx > 0) this.#cursorIdx--;
      } else {
        this.#chunks[0] = c.subarray(drop);
        this.#base += drop;
        this.#length -= drop;
        drop = 0;
      }
    }
    if (this.#cursorIdx === 0) this.#cursorAt = this.#base;
    return true;
  }

  /** Up to `max` bytes starting at absolute offset `from` (acked ≤ from ≤ end), as views of the held chunks. */
  pieces(from: number, max: number): Buffer[] {
    if (from < this.#cursorAt) {
      // A resend from further back (after a reconnect): walk from the first chunk again.
      this.#cursorIdx = 0;
      this.#cursorAt = this.#base;
    }
    const chunks = this.#chunks;
    while (this.#cursorIdx < chunks.length - 1 && this.#cursorAt + chunks[this.#cursorIdx]!.length <= from) {
      this.#cursorAt += chunks[this.#cursorIdx]!.length;
      this.#cursorIdx++;
    }
    const start = from - this.#cursorAt;
    return slice(chunks, start, start + max, this.#cursorIdx);
  }
}
