import { fstatSync } from 'node:fs';
import { Socket } from 'node:net';
import { Duplex, type Readable, type Writable } from 'node:stream';

/**
 * `dk connect --stdio`'s local end: stdin and stdout as one Duplex for bridge(), so one session
 * runs over them exactly as a local TCP connection would (`ssh -o ProxyCommand=…`).
 *
 * A pipe or socket on fd 0/1 (what ssh gives a ProxyCommand) is opened as a non-blocking libuv
 * stream, so a reader that stops reading pauses the session by credit instead of blocking the
 * event loop (the link's keepalive and resume run on it). Half-close works both ways: stdin's EOF
 * becomes the session's FIN, and the session's FIN ends stdout (shut down, then closed, so the
 * reader sees EOF whether fd 1 is a pipe or a socket). A terminal or a file falls back to
 * process.stdin/process.stdout.
 */
export function stdioDuplex(): Duplex {
  return new JoinedDuplex(streamOn(0, 'in') as Readable, streamOn(1, 'out') as Writable);
}

function streamOn(fd: 0 | 1, dir: 'in' | 'out'): Readable | Writable {
  let st;
  try {
    st = fstatSync(fd);
  } catch {
    st = null;
  }
  if (st && (st.isFIFO() || st.isSocket())) {
    return new Socket({ fd, readable: dir === 'in', writable: dir === 'out', allowHalfOpen: true });
  }
  return dir === 'in' ? process.stdin : process.stdout;
}

/** A readable and a writable as one Duplex, with backpressure both ways and half-close. */
export class JoinedDuplex extends Duplex {
  readonly #in: Readable;
  readonly #out: Writable;

  constructor(input: Readable, output: Writable) {
    super({ allowHalfOpen: true });
    this.#in = input;
    this.#out = output;
    input.pause();
    input.on('data', (c: Buffer) => { if (!this.push(c)) input.pause(); });
    input.once('end', () => this.push(null));
    input.on('error', (e) => this.destroy(e));
    output.on('error', (e) => this.destroy(e));
  }

  override _read(): void {
    this.#in.resume();
  }

  // Done when the OS has the bytes: this stream's writableLength is then what stdout still owes,
  // which is what bridge() reports as consumed to the session's credit.
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#out.write(chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#out.end(() => {
      // A pipe is not shut down by end(); closing our end of it is what the reader sees as EOF.
      if (this.#out instanceof Socket) this.#out.destroy();
      cb();
    });
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#in.destroy();
    if (this.#out instanceof Socket) this.#out.destroy();
    cb(err);
  }
}
