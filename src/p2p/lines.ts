import { P2pProtocolError } from './errors.ts';

/**
 * Newline-delimited text in, whole lines out, whatever way the bytes are split. A line longer than
 * `maxLine` bytes is an error as soon as that many bytes have arrived without a newline, so a
 * peer that never sends one cannot grow the buffer. Pure: no sockets.
 */
export class LineDecoder {
  readonly maxLine: number;
  #parts: Buffer[] = [];
  #size = 0;
  #failed = false;

  constructor(maxLine: number) {
    this.maxLine = maxLine;
  }

  /** The complete lines in `chunk` (without their "\n"; a trailing "\r" is kept). Throws P2pProtocolError on an overlong line. */
  push(chunk: Buffer): string[] {
    if (this.#failed) throw new P2pProtocolError('line decoder used after an error');
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      if (this.#size + nl - start > this.maxLine) return this.#fail();
      this.#parts.push(chunk.subarray(start, nl));
      lines.push(Buffer.concat(this.#parts).toString('utf8'));
      this.#parts = [];
      this.#size = 0;
      start = nl + 1;
    }
    if (start < chunk.length) {
      this.#size += chunk.length - start;
      if (this.#size > this.maxLine) return this.#fail();
      this.#parts.push(Buffer.from(chunk.subarray(start)));
    }
    return lines;
  }

  /** Bytes of an unfinished line held. */
  get buffered(): number {
    return this.#size;
  }

  #fail(): never {
    this.#failed = true;
    this.#parts = [];
    this.#size = 0;
    throw new P2pProtocolError(`line longer than ${this.maxLine} bytes`);
  }
}
