import { FrameLengthError } from './errors.ts';
import {
  BIG_HEADER_SIZE, CMD_MIN_LENGTH, FrameType, HEADER_SIZE, MAX_BIG_FRAME, OPN_V4_LENGTH, OPN_V6_LENGTH, type Frame,
} from './frame.ts';

/** The reserved bit R of byte 0; set only on a BIG DAT frame. */
const R_BIT = 0x20;

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
function parse(b: Buffer, big: boolean): Frame {
  if (big) return { type: FrameType.DAT, session: b.readUInt32BE(3), data: b.subarray(BIG_HEADER_SIZE) };
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
 * Incremental decoder: bytes in, frames out, the same frames however the bytes are split — but
 * for BIG DAT frames, whose payload is delivered in pieces as it arrives (the same bytes, in
 * order, however split). It holds at most one partial seed frame (≤ 8191 bytes) and never a BIG
 * payload, so its memory is bounded by construction.
 * Frames that lie whole inside one input chunk are returned as views of that chunk (no copy).
 * After a ProtocolError the decoder stays failed: a byte stream cannot be resynchronised.
 */
export class Decoder {
  #partial: Buffer | null = null; // a frame's bytes so far, allocated to its exact length once L is known
  #partialFill = 0;
  #head = Buffer.alloc(BIG_HEADER_SIZE); // the header bytes seen so far, when a chunk ends inside them
  #headFill = 0;
  #failed: Error | null = null;
  /**
   * BIG DAT frames are understood (frame.ts). The mux turns this on when HELLO negotiated
   * Feature.BIG, while handling the peer's HELLO: the peer sends its HELLO before any BIG frame,
   * so every BIG frame is parsed as one. Until then R is ignored, as the seed protocol says.
   */
  allowBig = false;
  /** Payload bytes of the current BIG frame still to come, and its session: delivered as they arrive. */
  #bigLeft = 0;
  #bigSession = 0;

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
      if (this.#bigLeft > 0) {
        const n = Math.min(this.#bigLeft, end - off);
        this.#bigLeft -= n;
        onFrame({ type: FrameType.DAT, session: this.#bigSession, data: chunk.subarray(off, off + n) });
        off += n;
        continue;
      }
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
          onFrame(parse(whole, false));
        }
        continue;
      }
      // The length-bearing bytes: two, or three for a BIG DAT frame (R set).
      const b0 = this.#headFill > 0 ? this.#head[0]! : chunk[off]!;
      // R is ignored (SPEC §4: reserved, sent as 0) except on DAT once BIG was negotiated.
      const big = this.allowBig && (b0 & (R_BIT | 0xc0)) === (R_BIT | (FrameType.DAT << 6));
      const need = big ? 3 : 2;
      if (this.#headFill + (end - off) < need) {
        while (off < end) this.#head[this.#headFill++] = chunk[off++]!;
        continue;
      }
      const h = this.#headFill;
      const b1 = h > 1 ? this.#head[1]! : chunk[off + 1 - h]!;
      const type = b0 >>> 6;
      const length = big ? ((b0 & 0x1f) << 16) | (b1 << 8) | (h > 2 ? this.#head[2]! : chunk[off + 2 - h]!) : ((b0 & 0x1f) << 8) | b1;
      const problem = big
        ? (length <= BIG_HEADER_SIZE || length > MAX_BIG_FRAME ? `a BIG frame carries 1-65536 bytes (L ${BIG_HEADER_SIZE + 1}-${MAX_BIG_FRAME})` : null)
        : lengthProblem(type, length);
      if (problem) throw new FrameLengthError(type, length, problem);
      if (this.#headFill === 0 && end - off >= length) {
        onFrame(parse(chunk.subarray(off, off + length), big));
        off += length;
        continue;
      }
      if (big) {
        // A BIG frame is never buffered: once its 7-byte header is known, its payload goes on as
        // DAT pieces, views of the chunks it arrives in (a 64 KiB frame always spans reads).
        if (h + (end - off) < BIG_HEADER_SIZE) {
          while (off < end) this.#head[this.#headFill++] = chunk[off++]!;
          continue;
        }
        for (let i = h; i < BIG_HEADER_SIZE; i++) this.#head[i] = chunk[off++]!;
        this.#headFill = 0;
        this.#bigSession = this.#head.readUInt32BE(3);
        this.#bigLeft = length - BIG_HEADER_SIZE;
        continue;
      }
      const buf = Buffer.allocUnsafe(length);
      this.#head.copy(buf, 0, 0, this.#headFill);
      this.#partialFill = this.#headFill;
      this.#headFill = 0;
      this.#partial = buf;
    }
  }
}
