import { slice } from './parts.ts';

/** Writes up to this size are small: a run of them is copied into one slab (append()). */
const SMALL = 512;
/** A slab starts small (from Node's shared pool: a 1-byte round trip pays no large allocation) and is large when runs go on. */
const FIRST_SLAB = 1024;
const SLAB = 16 * 1024;

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
  /** The slab gathering small writes, how much of it is used, and the chunk that views it (the last one, while it may grow). */
  #slab: Buffer | null = null;
  #slabUsed = 0;
  #slabView: Buffer | null = null;

  /** First unacknowledged offset. */
  get acked(): number {
    return this.#base;
  }
  /** One past the last byte written. */
  get end(): number {
    return this.#base + this.#length;
  }
  /** Buffers held (tests: small writes must not cost one each). */
  get chunkCount(): number {
    return this.#chunks.length;
  }
  /** Unacknowledged bytes held. */
  get size(): number {
    return this.#length;
  }

  /**
   * Holds `b` until acknowledged. A run of small writes (control frames: a 6-byte CLS, an 11-byte
   * CREDIT) is copied into one slab instead of being held as a Buffer each, which would cost ~30
   * times the bytes in objects: a window of unacknowledged bytes must be a bound on memory. A
   * small write followed by a large one (a DAT header, then its payload) is held as it is, so the
   * data path copies nothing.
   */
  append(b: Buffer): void {
    if (b.length === 0) return;
    this.#length += b.length;
    const chunks = this.#chunks;
    const last = chunks.length - 1;
    const tail = chunks[last];
    if (b.length > SMALL || tail === undefined) {
      chunks.push(b);
      return;
    }
    const slab = this.#slab;
    if (slab && tail === this.#slabView && this.#slabUsed + b.length <= slab.length) {
      // The tail views the slab up to its used part (ack() replaces a view it trims, so identity
      // says it still does): extend it in place.
      b.copy(slab, this.#slabUsed);
      this.#slabUsed += b.length;
      this.#slabView = chunks[last] = slab.subarray(this.#slabUsed - tail.length - b.length, this.#slabUsed);
      return;
    }
    if (tail.length > SMALL) {
      chunks.push(b);
      return;
    }
    // Two small writes in a row: start a slab with both (the tail is held as a Buffer no longer);
    // a large one if the run filled a slab already.
    const size = slab && last > 0 && chunks[last - 1] === this.#slabView ? SLAB : FIRST_SLAB;
    const fresh = size === SLAB ? Buffer.allocUnsafeSlow(SLAB) : Buffer.allocUnsafe(FIRST_SLAB);
    tail.copy(fresh, 0);
    b.copy(fresh, tail.length);
    this.#slab = fresh;
    this.#slabUsed = tail.length + b.length;
    this.#slabView = chunks[last] = fresh.subarray(0, this.#slabUsed);
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
