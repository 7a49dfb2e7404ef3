import { FrameLengthError } from './errors.ts';
import {
  CMD_MIN_LENGTH, FrameType, HEADER_SIZE, OPN_V4_LENGTH, OPN_V6_LENGTH, type Frame,
} from './frame.ts';

/**
 * Checks L against the type's limits the moment the two header bytes are known, before anything
 * is buffered (STYLE §3). Returns a reason or null.
 */
function lengthProblem(type: number, length: number): string | null {
  if (length < HEADER_SIZE) return 'shorter than the 6-byte header';
  switch (type) {
    case FrameType.CLS:
      return length === HEADER_SIZE ? null : 'CLS carries no payload (L must be 6)';
    case FrameType.OPN:
      return length === OPN_V4_LENGTH || length === OPN_V6_LENGTH ? null : 'OPN length must be 12 (IPv4) or 24 (IPv6)';
    case FrameType.CMD:
      return length >= CMD_MIN_LENGTH ? null : 'CMD needs a command byte (L >= 7)';
    default:
      return null; // DAT: any 6..8191; 13 bits cannot exceed 8191.
  }
}

/** Builds a frame from exactly one frame's bytes (already length-checked). */
function parse(b: Buffer): Frame {
  const type = b[0]! >>> 6;
  const session = b.readUInt32BE(2);
  switch (type) {
    case FrameType.CLS:
      return { type: FrameType.CLS, session };
    case FrameType.OPN:
      return { type: FrameType.OPN, session, port: b.readUInt16BE(HEADER_SIZE), address: b.subarray(HEADER_SIZE + 2) };
    case FrameType.DAT:
      return { type: FrameType.DAT, session, data: b.subarray(HEADER_SIZE) };
    default:
      return { type: FrameType.CMD, id: session, command: b[HEADER_SIZE]!, params: b.subarray(CMD_MIN_LENGTH) };
  }
}

/**
 * Incremental decoder: bytes in, frames out, the same frames however the bytes are split.
 * It holds at most one partial frame (≤ 8191 bytes), so its memory is bounded by construction.
 * Frames that lie whole inside one input chunk are returned as views of that chunk (no copy).
 * After a ProtocolError the decoder stays failed: a byte stream cannot be resynchronised.
 */
export class Decoder {
  #partial: Buffer | null = null; // a frame's bytes so far, allocated to its exact length once L is known
  #partialFill = 0;
  #head = Buffer.alloc(2); // the first header byte when a chunk ends after it
  #headFill = 0;
  #failed: Error | null = null;

  /** Bytes buffered for an incomplete frame. */
  get buffered(): number {
    return this.#headFill + this.#partialFill;
  }

  /** Decodes `chunk`, calling `onFrame` for each complete frame. Throws a ProtocolError on bad input. */
  push(chunk: Buffer, onFrame: (f: Frame) => void): void {
    if (this.#failed) throw this.#failed;
    try {
      this.#push(chunk, onFrame);
    } catch (err) {
      this.#failed = err as Error;
      throw err;
    }
  }

  #push(chunk: Buffer, onFrame: (f: Frame) => void): void {
    let off = 0;
    const end = chunk.length;
    while (off < end) {
      if (this.#partial) {
        const need = this.#partial.length - this.#partialFill;
        const n = Math.min(need, end - off);
        chunk.copy(this.#partial, this.#partialFill, off, off + n);
        this.#partialFill += n;
        off += n;
        if (this.#partialFill === this.#partial.length) {
          const whole = this.#partial;
          this.#partial = null;
          this.#partialFill = 0;
          onFrame(parse(whole));
        }
        continue;
      }
      // Need the two length-bearing bytes.
      let b0: number;
      let b1: number;
      if (this.#headFill === 1) {
        b0 = this.#head[0]!;
        b1 = chunk[off]!;
      } else if (end - off >= 2) {
        b0 = chunk[off]!;
        b1 = chunk[off + 1]!;
      } else {
        this.#head[0] = chunk[off]!;
        this.#headFill = 1;
        off += 1;
        continue;
      }
      const type = b0 >>> 6;
      const length = ((b0 & 0x1f) << 8) | b1;
      const problem = lengthProblem(type, length);
      if (problem) throw new FrameLengthError(type, length, problem);
      if (this.#headFill === 0 && end - off >= length) {
        onFrame(parse(chunk.subarray(off, off + length)));
        off += length;
        continue;
      }
      const buf = Buffer.allocUnsafe(length);
      if (this.#headFill === 1) {
        buf[0] = b0;
        this.#headFill = 0;
        this.#partialFill = 1;
      } else {
        this.#partialFill = 0;
      }
      this.#partial = buf;
    }
  }
}
