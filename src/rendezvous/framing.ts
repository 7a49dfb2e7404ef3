/**
 * RustDesk's BytesCodec framing (hbb_common src/bytes_codec.rs), used on every rendezvous and relay
 * TCP connection until the relay switches to raw bytes.
 *
 * A frame is a 1-4 byte little-endian header and a payload. The low 2 bits of the first byte are
 * the header length minus 1; the whole header read as a little-endian integer, shifted right by
 * 2, is the payload length (decode_head, bytes_codec.rs:44-74). The encoder picks the shortest
 * header (bytes_codec.rs:118-143); decoders accept longer ones, so `15 00` is a 5-byte frame.
 */
import { FrameTooLargeError, FramingStateError, type RendezvousError } from './errors.ts';

/** The largest payload a 4-byte header can describe: 30 bits (upstream's encoder: "Overflow"). */
export const MAX_FRAME_ENCODABLE = 0x3fff_ffff;

/**
 * Default limit on a received payload. Upstream decoders have none (usize::MAX, bytes_codec.rs:32)
 * but never reserve more than 256 KiB for a frame before its bytes arrive
 * (MAX_PREALLOCATED_PAYLOAD_LEN, bytes_codec.rs:6): that is the most upstream commits to on a
 * header's word, so it is the most this decoder accepts. Rendezvous messages are far smaller
 * (UDP carries the same messages in one datagram, < 64 KiB).
 */
export const DEFAULT_MAX_FRAME_SIZE = 256 * 1024;

/** The shortest header for a payload of `length` bytes. */
export function encodeFrameHeader(length: number, maxFrameSize: number = MAX_FRAME_ENCODABLE): Buffer {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`frame length must be a non-negative integer, got ${length}`);
  if (length > Math.min(maxFrameSize, MAX_FRAME_ENCODABLE)) throw new FrameTooLargeError(length, Math.min(maxFrameSize, MAX_FRAME_ENCODABLE));
  // length ≤ 2^30 - 1, so length * 4 + 3 < 2^32 stays exact; `<<` would overflow into the sign bit.
  const h = length * 4;
  if (length <= 0x3f) return Buffer.from([h]);
  const b = Buffer.alloc(4);
  if (length <= 0x3fff) {
    b.writeUInt16LE(h | 1);
    return b.subarray(0, 2);
  }
  b.writeUInt32LE(length <= 0x3f_ffff ? h + 2 : h + 3);
  return length <= 0x3f_ffff ? b.subarray(0, 3) : b;
}

/** Header ‖ payload. */
export function encodeFrame(payload: Uint8Array, maxFrameSize: number = MAX_FRAME_ENCODABLE): Buffer {
  return Buffer.concat([encodeFrameHeader(payload.length, maxFrameSize), payload]);
}

export interface FrameDecoderInit {
  /** Longest payload accepted, checked as soon as a header is complete. Default DEFAULT_MAX_FRAME_SIZE. */
  maxFrameSize?: number;
}

/** Buffer capacity kept across frames; a larger one (after a big frame) is dropped once empty. */
const KEEP_CAPACITY = 16 * 1024;

/**
 * Incremental decoder: bytes in, frames out, the same frames however the input is split.
 *
 * The header is parsed as soon as its last byte arrives and an oversized length is refused then,
 * before any of the payload is buffered. Memory: one contiguous buffer holding the unreturned
 * bytes, at most one partial frame (≤ maxFrameSize + 4) plus what one `push` added beyond it;
 * `decode()` drains after every push, so with it that bound holds between calls. Frames are
 * fresh copies. After an error the stream cannot be resynchronised and every further call throws.
 */
export class FrameDecoder {
  readonly maxFrameSize: number;
  #buf: Buffer = Buffer.alloc(0);
  #start = 0;
  #end = 0;
  /** Header length and payload length of the frame at the front, once its header is complete. */
  #head = 0;
  #length = -1;
  #failed: RendezvousError | null = null;

  constructor(init: FrameDecoderInit = {}) {
    const max = init.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    if (!Number.isSafeInteger(max) || max < 0 || max > MAX_FRAME_ENCODABLE) {
      throw new RangeError(`maxFrameSize must be an integer in [0, ${MAX_FRAME_ENCODABLE}], got ${max}`);
    }
    this.maxFrameSize = max;
  }

  /** Bytes received and not yet returned as frames. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Adds bytes; throws FrameTooLargeError at once if they complete an oversized header. */
  push(chunk: Uint8Array): void {
    this.#check();
    if (chunk.length === 0) return;
    const live = this.#end - this.#start;
    if (this.#end + chunk.length > this.#buf.length) {
      if (live + chunk.length <= this.#buf.length) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        // Doubling keeps many small pushes linear; capacity stays under twice what is held.
        const grown = Buffer.allocUnsafe(Math.max(live + chunk.length, 2 * this.#buf.length, 256));
        this.#buf.copy(grown, 0, this.#start, this.#end);
        this.#buf = grown;
      }
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
    this.#readHeader();
  }

  /** The next complete frame's payload, or undefined until more bytes arrive. */
  next(): Uint8Array | undefined {
    this.#check();
    if (!this.#readHeader() || this.buffered < this.#head + this.#length) return undefined;
    const from = this.#start + this.#head;
    const payload = Buffer.from(this.#buf.subarray(from, from + this.#length));
    this.#consume(this.#head + this.#length);
    this.#length = -1;
    return payload;
  }

  /** push + every frame that is now complete. */
  decode(chunk: Uint8Array): Uint8Array[] {
    this.push(chunk);
    const frames: Uint8Array[] = [];
    for (let f = this.next(); f !== undefined; f = this.next()) frames.push(f);
    return frames;
  }

  /**
   * Every byte after the last frame returned, undecoded, and ends the decoder: for the switch to
   * raw bytes (hbbr after pairing delivers what came behind the first frame as stream bytes).
   */
  takeRest(): Buffer {
    this.#check();
    const rest = Buffer.from(this.#buf.subarray(this.#start, this.#end));
    this.#consume(this.buffered);
    this.#failed = new FramingStateError('the decoder was ended by takeRest()');
    return rest;
  }

  #check(): void {
    if (this.#failed) throw this.#failed;
  }

  /** Parses (without consuming) the header at the front; true once it is complete and allowed. */
  #readHeader(): boolean {
    if (this.#length >= 0) return true;
    if (this.buffered === 0) return false;
    const head = (this.#buf[this.#start]! & 3) + 1;
    if (this.buffered < head) return false;
    let value = 0;
    for (let i = head - 1; i >= 0; i--) value = value * 256 + this.#buf[this.#start + i]!;
    const length = Math.floor(value / 4);
    if (length > this.maxFrameSize) {
      this.#failed = new FrameTooLargeError(length, this.maxFrameSize);
      throw this.#failed;
    }
    this.#head = head;
    this.#length = length;
    return true;
  }

  #consume(n: number): void {
    this.#start += n;
    if (this.#start === this.#end) {
      this.#start = 0;
      this.#end = 0;
      if (this.#buf.length > KEEP_CAPACITY) this.#buf = Buffer.alloc(0);
    }
  }
}
