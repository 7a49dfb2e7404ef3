/**
 * One end of a relayed pipe: a TCP socket (bytes) or a WebSocket (binary messages) behind one small
 * interface, so the relay's handshake and its pipe are written once for both transports.
 *
 * Reading: `onData` gets each chunk as it arrives (TCP: stream bytes; WebSocket: one binary
 * message, or an empty buffer for a text/ping message, which counts as activity but carries
 * nothing, as in hbbr's WebSocket `recv`). `pause`/`resume` stop and restart reading.
 * Writing: `write` queues a chunk (TCP) or sends one binary message (WebSocket) and returns false
 * once the queue is over its high-water mark; `onDrain` fires when it is back under it.
 * `onEnd` fires once, when the peer ends, resets or errors, or the end is destroyed.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

export type RelayTransport = 'tcp' | 'ws';
/** How an end stopped: the peer ended (FIN / close frame), or an error or reset. */
export type EndCause = 'end' | 'error';

export interface RelayEnd {
  readonly transport: RelayTransport;
  onData: ((chunk: Buffer) => void) | null;
  onDrain: (() => void) | null;
  onEnd: ((cause: EndCause) => void) | null;
  pause(): void;
  resume(): void;
  write(chunk: Uint8Array): boolean;
  /** Bytes accepted by `write` and not yet handed to the kernel. */
  queued(): number;
  /** Sends what is queued, then closes; destroyed anyway after `graceMs`. */
  end(graceMs: number): void;
  destroy(): void;
}

/** A TCP socket as a relay end. */
export class TcpEnd implements RelayEnd {
  readonly transport = 'tcp';
  onData: ((chunk: Buffer) => void) | null = null;
  onDrain: (() => void) | null = null;
  onEnd: ((cause: EndCause) => void) | null = null;
  readonly socket: Socket;
  #ended = false;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (c: Buffer) => this.onData?.(c));
    socket.on('drain', () => this.onDrain?.());
    socket.on('end', () => this.#stop('end'));
    socket.on('error', () => this.#stop('error'));
    socket.on('close', (hadError) => this.#stop(hadError ? 'error' : 'end'));
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  write(chunk: Uint8Array): boolean {
    return this.socket.write(chunk);
  }

  queued(): number {
    return this.socket.writableLength;
  }

  end(graceMs: number): void {
    if (this.socket.destroyed) return;
    this.socket.end();
    // A peer that never closes its side must not hold the socket open.
    const t = setTimeout(() => this.socket.destroy(), graceMs);
    t.unref();
    this.socket.once('close', () => clearTimeout(t));
  }

  destroy(): void {
    this.socket.destroy();
  }

  #stop(cause: EndCause): void {
    if (this.#ended) return;
    this.#ended = true;
    this.onEnd?.(cause);
  }
}

/**
 * Bytes a WebSocket end may have in flight (sent, not yet written to its socket) before `write`
 * says stop; a single message can exceed it, which is fine: the source is paused after it.
 */
export const WS_HIGH_WATER_MARK = 64 * 1024;

/** A WebSocket as a relay end: one binary message per chunk each way. */
export class WsEnd implements RelayEnd {
  readonly transport = 'ws';
  onData: ((chunk: Buffer) => void) | null = null;
  onDrain: (() => void) | null = null;
  onEnd: ((cause: EndCause) => void) | null = null;
  readonly ws: WebSocket;
  #inFlight = 0;
  #full = false;
  #ended = false;

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data, isBinary) => {
      // binaryType 'nodebuffer' (the default) delivers one Buffer per message.
      this.onData?.(isBinary ? (data as Buffer) : Buffer.alloc(0));
    });
    ws.on('ping', () => this.onData?.(Buffer.alloc(0)));
    ws.on('close', (code) => this.#stop(code === 1000 || code === 1001 || code === 1005 ? 'end' : 'error'));
    ws.on('error', () => this.#stop('error'));
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  write(chunk: Uint8Array): boolean {
    const n = chunk.length;
    this.#inFlight += n;
    this.ws.send(chunk, { binary: true }, () => {
      this.#inFlight -= n;
      if (this.#full && this.#inFlight <= WS_HIGH_WATER_MARK) {
        this.#full = false;
        this.onDrain?.();
      }
    });
    if (this.#inFlight > WS_HIGH_WATER_MARK) this.#full = true;
    return !this.#full;
  }

  queued(): number {
    return this.ws.bufferedAmount;
  }

  end(graceMs: number): void {
    if (this.ws.readyState === this.ws.CLOSED) return;
    this.ws.close(1000);
    const t = setTimeout(() => this.ws.terminate(), graceMs);
    t.unref();
    this.ws.once('close', () => clearTimeout(t));
  }

  destroy(): void {
    this.ws.terminate();
  }

  #stop(cause: EndCause): void {
    if (this.#ended) return;
    this.#ended = true;
    this.onEnd?.(cause);
  }
}
