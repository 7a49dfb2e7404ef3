import { Duplex } from 'node:stream';
import { Attachment, type AttachmentOwner, type DirectionKeys } from './attachment.ts';
import { realClock, type Clock } from './clock.ts';
import { LinkResetError, ResumeError } from './errors.ts';
import type { SessionSecrets } from './handshake.ts';
import { totalLength } from './parts.ts';
import { COMPAT_DATA, MAX_DATA } from './record.ts';
import { LinkSession } from './session.ts';

export { SOCKET_QUEUE, SOCKET_READ_LIMIT, type DirectionKeys } from './attachment.ts';

export interface LinkOptions {
  /** Most unacknowledged bytes held for retransmission; writes wait while it is full. */
  window: number;
  /** PING interval on an attached transport. */
  pingMs: number;
  /** A transport from which nothing arrived for this long is dropped (half-open detection). */
  deadMs: number;
  /** Received bytes are acknowledged this long after the first unacknowledged one, at the latest. */
  ackDelayMs: number;
  /**
   * Most bytes one DATA record carries. COMPAT_DATA (64 KiB), which every peer accepts, unless
   * every peer is known to accept MAX_DATA (64 KiB + 512: a 64 KiB read with its DK frame headers
   * in one record, record.ts).
   */
  recordData: number;
}

export const DEFAULT_LINK_OPTIONS: LinkOptions = { window: 8 * 1024 * 1024, pingMs: 5000, deadMs: 15_000, ackDelayMs: 5, recordData: COMPAT_DATA };

/**
 * One end of a link session as the application sees it: a Duplex whose bytes survive the loss of
 * the transport under it. The state lives in a LinkSession (session.ts); each transport is put
 * under it by attach() as an Attachment (attachment.ts). When the transport dies the stream emits
 * 'detached' and keeps its state — written but unacknowledged bytes, the count of bytes received —
 * until a new transport is attached or the owner destroys it.
 *
 * Events besides the Duplex ones: 'attached', 'detached' (reason), 'complete' (both directions
 * ended and acknowledged: the session can be forgotten), 'protocolError' (err: a record failed;
 * the transport was dropped), 'resumeFailed' (err: a ResumeError with its `reason`).
 */
export class LinkStream extends Duplex {
  readonly secrets: SessionSecrets;
  readonly opts: LinkOptions;
  readonly session: LinkSession;
  remoteAddress: string | undefined;
  remotePort: number | undefined;

  readonly #clock: Clock;
  #att: Attachment | null = null;
  /** A write (or a corked batch of writes) waiting for window space, and its callback. */
  #pending: { chunks: Buffer[]; cb: (err?: Error | null) => void } | null = null;
  #pausedByUs = false;
  #peerReset = false;
  #finalCb: ((err?: Error | null) => void) | null = null;
  readonly #owner: AttachmentOwner;

  constructor(secrets: SessionSecrets, opts: LinkOptions, clock: Clock = realClock) {
    super({ allowHalfOpen: true, readableHighWaterMark: 256 * 1024, writableHighWaterMark: 64 * 1024 });
    this.secrets = secrets;
    this.opts = opts;
    this.#clock = clock;
    this.session = new LinkSession({
      window: opts.window,
      ackDelayMs: opts.ackDelayMs,
      recordData: opts.recordData,
      clock,
      deliver: (pieces) => {
        let more = true;
        for (const p of pieces) more = this.push(p);
        if (!more && !this.#pausedByUs) {
          this.#pausedByUs = true;
          this.#att?.pause();
        }
      },
      peerEnded: () => this.push(null),
      finAcknowledged: () => {
        const cb = this.#finalCb;
        this.#finalCb = null;
        cb?.();
      },
      completed: () => {
        this.#detach('complete', false, Buffer.alloc(0));
        this.emit('complete');
      },
      reset: () => {
        this.#peerReset = true;
        this.destroy(new LinkResetError());
      },
      acknowledged: () => this.#admit(),
    });
    this.#owner = {
      readerPaused: () => this.#pausedByUs,
      lost: (a, reason, err) => {
        if (a !== this.#att) return;
        if (err) this.emit('protocolError', err);
        this.#detach(reason, true);
      },
      drained: () => this.#pump(),
    };
  }

  /** The connection count: 0 for the NEW handshake's connection, then one more per resume (resume.ts). */
  /**
   * The peer accepts records of MAX_DATA (a 64 KiB read with its frame headers in one record): the
   * DK mux calls this when HELLO negotiated BIG, which only peers of this version or later offer.
   */
  useLargeRecords(): void {
    this.session.setRecordData(MAX_DATA);
  }

  get epoch(): number {
    return this.session.epoch;
  }
  get rttMs(): number | null {
    return this.session.rttMs;
  }
  /** Counters for tests and metrics. */
  get stats(): LinkSession['stats'] {
    return this.session.stats;
  }
  /** Bytes (and FIN) received in order: what a resume reports to the peer. */
  get received(): number {
    return this.session.received;
  }
  /** Unacknowledged bytes held for retransmission (≤ window). */
  get unacked(): number {
    return this.session.unacked;
  }
  /** Whether reading the transport is paused because the peer does not read what we send. */
  get readStopped(): boolean {
    return this.#att?.readStopped ?? false;
  }
  /** Every byte this stream holds in memory: replay buffer, queued reads and writes, and the transport's queue. */
  get buffered(): number {
    return this.session.unacked + (this.#pending ? totalLength(this.#pending.chunks) : 0) + this.readableLength + this.writableLength + (this.#att?.transport.writableLength ?? 0);
  }
  get attached(): boolean {
    return this.#att !== null;
  }

  /**
   * Puts a freshly handshaken transport (a TCP socket or any Duplex byte pipe) under the session;
   * `peerReceived` is what the peer already has, `leftover` what the handshake read past its end.
   * `replaced`: what becomes of a transport still attached — destroyed (the client, which chose to
   * move), or left for the peer to close ('linger': the server, see LINGER_MS in attachment.ts).
   */
  attach(transport: Duplex, keys: DirectionKeys, peerReceived: number, leftover: Buffer, replaced: 'destroy' | 'linger' = 'destroy'): void {
    if (this.destroyed || this.session.complete) {
      transport.destroy();
      return;
    }
    // Newer epoch wins: the old transport is dropped at once (nothing more is read from or sent
    // on it), never waited on.
    if (this.#att) this.#detach('replaced by a newer connection', false, replaced === 'linger' ? 'linger' : undefined);
    try {
      this.session.checkPeerReceived(peerReceived);
    } catch (err) {
      transport.destroy();
      this.emit('resumeFailed', err);
      this.destroy(err as ResumeError);
      return;
    }
    const a = new Attachment(transport, keys, this.session, this.#owner, this.#clock, this.opts);
    this.#att = a;
    const t = transport as Duplex & { remoteAddress?: string; remotePort?: number };
    this.remoteAddress = t.remoteAddress;
    this.remotePort = t.remotePort;
    this.session.attach(a, peerReceived);
    // The resume may have completed the session (the peer had our FIN): then it is detached already.
    if (this.#att !== a) return;
    a.start();
    this.emit('attached');
    if (leftover.length > 0 && this.#att === a) a.feed(leftover);
    // The resume may have acknowledged bytes: a write waiting for window space can go on now.
    this.#admit();
  }

  /**
   * Lets go of the transport; `last` ends it gracefully after that final record (see
   * Attachment.stop). `announce` emits 'detached'.
   */
  #detach(reason: string, announce: boolean, last?: Buffer | 'linger'): void {
    const a = this.#att;
    if (!a) return;
    this.#att = null;
    this.session.detach();
    a.stop(last);
    if (announce && !this.destroyed && !this.session.complete) this.emit('detached', reason);
  }

  /** Drops the current transport (tests, and the client when it wants to move to a new path). */
  dropConnection(reason = 'dropped'): void {
    this.#detach(reason, true);
  }

  /** Sends what the replay buffer holds at the end of the current callback (Attachment.corkTurn). */
  #pump(): void {
    const a = this.#att;
    if (a && !a.blocked) a.corkTurn();
  }

  /** Takes as much of the pending write as the window allows. */
  #admit(): void {
    const p = this.#pending;
    if (p) {
      let room = this.session.room;
      const chunks = p.chunks;
      let i = 0;
      for (; i < chunks.length && room > 0; i++) {
        const c = chunks[i]!;
        if (c.length > room) {
          this.session.append(c.subarray(0, room));
          chunks[i] = c.subarray(room);
          break;
        }
        this.session.append(c);
        room -= c.length;
      }
      if (i === chunks.length) {
        this.#pending = null;
        p.cb();
      } else {
        chunks.splice(0, i);
      }
    }
    this.#pump();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#pending = { chunks: [chunk], cb };
    this.#admit();
  }

  /**
   * The writes made while the stream was corked (the mux writes a DAT frame's header and payload
   * as separate buffers) join the replay buffer together, and the records sealed from them are
   * as large as usual rather than one per write.
   */
  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.#pending = { chunks: chunks.map((c) => c.chunk), cb };
    this.#admit();
  }

  /**
   * 'finish' waits until the peer has acknowledged our FIN, i.e. holds every byte. Node closes a
   * Duplex once it has ended and finished; finishing earlier would close (and forget) the session
   * while bytes still await acknowledgement and retransmission.
   */
  override _final(cb: (err?: Error | null) => void): void {
    this.session.end();
    this.#finalCb = cb;
    this.#pump();
  }

  override _read(): void {
    if (this.#pausedByUs) {
      this.#pausedByUs = false;
      this.#att?.resumeReading();
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // Tell the peer this session is over for good (CLOSE), unless it ended normally or the peer reset it.
    const a = this.#att;
    if (a && !this.session.complete && !this.#peerReset) this.#detach('destroyed', false, a.closeRecord());
    else this.#detach('destroyed', false);
    this.session.dispose();
    this.#pending?.cb(err ?? new LinkResetError());
    this.#pending = null;
    this.#finalCb = null;
    cb(err);
  }
}
