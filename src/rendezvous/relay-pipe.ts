/**
 * A paired relay: moves what one end sends to the other, both ways, as hbbr's `relay`
 * (relay_server.rs) does after pairing.
 *
 * - TCP ⇄ TCP: a raw byte pipe (hbbr switches both codecs to raw). The bytes that followed each
 *   side's RequestRelay, including everything a side sent while it waited for its partner, come
 *   first, in order.
 * - WebSocket ⇄ TCP: translated. Each binary message becomes one BytesCodec frame on the TCP side,
 *   each frame from the TCP side one binary message (hbbr: the TCP side stays framed when the other
 *   is a WebSocket). Empty messages and frames carry nothing and are not forwarded, as in hbbr.
 * - WebSocket ⇄ WebSocket: message for message.
 *
 * Backpressure both ways: a source is paused while the other end's write queue is over its
 * high-water mark and resumed on drain, so a side that stops reading costs the relay at most one
 * high-water mark plus one read chunk (one message for WebSocket) per direction.
 * The pipe ends, closing both ends, when either ends or fails, when it is idle too long (the owner
 * calls `checkIdle`), when a translated frame is over the size limit, or when the owner closes it.
 */
import { FrameDecoder, encodeFrameHeader } from './framing.ts';
import type { RelayEnd } from './relay-end.ts';

export type PipeEndReason = 'a_closed' | 'b_closed' | 'a_error' | 'b_error' | 'idle' | 'frame_too_large' | 'shutdown';

export interface PipeStats {
  bytesAtoB: number;
  bytesBtoA: number;
}

export interface RelayPipeInit {
  /** The half that waited (came first) and the one that completed the pair. */
  a: RelayEnd;
  b: RelayEnd;
  /** What each side sent after its RequestRelay, before pairing: TCP bytes or WebSocket messages. */
  earlyA: readonly Buffer[];
  earlyB: readonly Buffer[];
  /** Largest frame taken from a TCP side whose partner is a WebSocket. */
  maxMessageSize: number;
  /** How long a gracefully ended side may take to close before it is destroyed. */
  closeGraceMs: number;
  /** Called once, when the pipe ends. */
  onEnd: (reason: PipeEndReason, stats: PipeStats) => void;
  now?: () => number;
}

export class RelayPipe {
  readonly #init: RelayPipeInit;
  readonly #now: () => number;
  readonly #decoders: FrameDecoder[] = [];
  #bytesAtoB = 0;
  #bytesBtoA = 0;
  /** Chunks received either way: any of them, even an empty one, is activity. */
  #chunks = 0;
  #seenChunks = -1;
  #lastActive: number;
  #done = false;

  constructor(init: RelayPipeInit) {
    this.#init = init;
    this.#now = init.now ?? Date.now;
    this.#lastActive = this.#now();
    const { a, b } = init;
    a.onEnd = (cause) => this.#finish(cause === 'end' ? 'a_closed' : 'a_error');
    b.onEnd = (cause) => this.#finish(cause === 'end' ? 'b_closed' : 'b_error');
    const toB = this.#direction(a, b, (n) => { this.#bytesAtoB += n; }, 'a');
    const toA = this.#direction(b, a, (n) => { this.#bytesBtoA += n; }, 'b');
    for (const c of init.earlyA) toB.handle(c);
    for (const c of init.earlyB) toA.handle(c);
    if (this.#done) return;
    a.onData = toB.handle;
    b.onData = toA.handle;
    // The owner may have paused a side while it waited; read it again unless its partner is full.
    toB.start();
    toA.start();
  }

  get stats(): PipeStats {
    return { bytesAtoB: this.#bytesAtoB, bytesBtoA: this.#bytesBtoA };
  }

  get ended(): boolean {
    return this.#done;
  }

  /** Bytes the relay holds for this pair: both write queues and any partial translated frame. */
  queued(): number {
    let n = this.#init.a.queued() + this.#init.b.queued();
    for (const d of this.#decoders) n += d.buffered;
    return n;
  }

  /** Ends the pipe if nothing was received either way for `idleMs`; true if it did. */
  checkIdle(idleMs: number): boolean {
    if (this.#done) return false;
    const now = this.#now();
    if (this.#chunks !== this.#seenChunks) {
      this.#seenChunks = this.#chunks;
      this.#lastActive = now;
      return false;
    }
    if (now - this.#lastActive < idleMs) return false;
    this.#finish('idle');
    return true;
  }

  /** Ends the pipe now (server shutdown): both ends destroyed. */
  close(): void {
    this.#finish('shutdown');
  }

  /** The handler for chunks from `src`, writing them to `dst` in `dst`'s form. */
  #direction(src: RelayEnd, dst: RelayEnd, count: (n: number) => void, side: 'a' | 'b'): { handle: (chunk: Buffer) => void; start: () => void } {
    let blocked = false;
    const start = (): void => {
      if (!blocked) src.resume();
    };
    dst.onDrain = () => {
      if (!blocked || this.#done) return;
      blocked = false;
      src.resume();
    };
    const block = (): void => {
      blocked = true;
      src.pause();
    };
    if (src.transport === dst.transport) {
      // Raw bytes (TCP ⇄ TCP) or message for message (WebSocket ⇄ WebSocket).
      const handle = (chunk: Buffer): void => {
        this.#chunks++;
        if (chunk.length === 0 || this.#done) return;
        count(chunk.length);
        if (!dst.write(chunk) && !blocked) block();
      };
      return { handle, start };
    }
    if (dst.transport === 'tcp') {
      // WebSocket → TCP: one frame per message.
      const handle = (chunk: Buffer): void => {
        this.#chunks++;
        if (chunk.length === 0 || this.#done) return;
        count(chunk.length);
        dst.write(encodeFrameHeader(chunk.length));
        if (!dst.write(chunk) && !blocked) block();
      };
      return { handle, start };
    }
    // TCP → WebSocket: one message per frame.
    const decoder = new FrameDecoder({ maxFrameSize: this.#init.maxMessageSize });
    this.#decoders.push(decoder);
    const handle = (chunk: Buffer): void => {
      this.#chunks++;
      if (chunk.length === 0 || this.#done) return;
      count(chunk.length);
      let frames: Uint8Array[];
      try {
        frames = decoder.decode(chunk);
      } catch {
        this.#finish('frame_too_large', side);
        return;
      }
      let ok = true;
      for (const f of frames) if (f.length > 0) ok = dst.write(f) && ok;
      if (!ok && !blocked) block();
    };
    return { handle, start };
  }

  /**
   * Ends both sides: each side is sent what is queued for it and closed, except a side that
   * failed (`culprit`), destroyed at once, and both on shutdown.
   */
  #finish(reason: PipeEndReason, culprit?: 'a' | 'b'): void {
    if (this.#done) return;
    this.#done = true;
    const { a, b, closeGraceMs } = this.#init;
    const failed = culprit ?? (reason === 'a_error' ? 'a' : reason === 'b_error' ? 'b' : null);
    for (const [name, end] of [['a', a], ['b', b]] as const) {
      end.onData = null;
      end.onDrain = null;
      end.onEnd = null;
      if (reason === 'shutdown' || failed === name) {
        end.destroy();
      } else {
        end.end(closeGraceMs);
        // Keep reading (and dropping) so the peer's close is seen and the socket goes promptly.
        end.resume();
      }
    }
    this.#decoders.length = 0;
    this.#init.onEnd(reason, this.stats);
  }
}
