import type { Duplex } from 'node:stream';
import type { Clock, LinkTimer } from './clock.ts';
import { Rec, RecordOpener, RecordSealer, type Record } from './record.ts';
import type { LinkSession, RecordSink } from './session.ts';

/** Bytes queued on the transport before the session stops sending DATA until 'drain'. */
export const SOCKET_QUEUE = 256 * 1024;
/**
 * Bytes queued on the transport beyond which we stop reading it until 'drain'. DATA stops at
 * SOCKET_QUEUE plus one record (≤ MAX_DATA + 29), and an honest peer makes us add only a few
 * control records (an ACK per MiB or per 5 ms, a PONG per PING: one per pingMs and one per half
 * window): together far below this. A peer that sends records (PINGs, DATA that we ACK) and reads
 * nothing gets past it; then we stop reading it, and what it sends stays in TCP's buffers.
 */
export const SOCKET_READ_LIMIT = 512 * 1024;

/**
 * How long a transport replaced by a resume is kept open for its peer to close (stop('linger')).
 * The server lingers: a client that moves its session (client.ts, migrateLink) still has the old
 * transport attached until the resume answer arrives on the new one, and closing the old one at
 * once would often reach it first — the client would see a lost connection during a planned move.
 */
export const LINGER_MS = 2000;

export interface DirectionKeys {
  send: Buffer;
  recv: Buffer;
}

/** What an attachment tells the stream that owns it (LinkStream). */
export interface AttachmentOwner {
  /** The application does not read: the transport stays paused whatever else happens. */
  readerPaused(): boolean;
  /** The transport closed, failed, went silent or sent an unauthentic record; `err` for the last. */
  lost(a: Attachment, reason: string, err?: Error): void;
  /** The transport drained: writes waiting for it can go on. */
  drained(): void;
}

/** A transport that may be a net.Socket: its TCP_NODELAY and peer address are used when present. */
type MaybeSocket = Duplex & { setNoDelay?: (on: boolean) => unknown; remoteAddress?: string; remotePort?: number };

/**
 * The adapter between a LinkSession and one transport (a TCP socket, or any Duplex byte pipe — a
 * relayed one, an in-memory pair in tests) for one epoch: seals the session's records with this
 * epoch's keys and writes them, opens what arrives and hands the records to the session, batches
 * one event's writes into one writev (cork turn), applies the transport's backpressure, and
 * checks liveness (PING every pingMs, dropped after deadMs of silence).
 */
export class Attachment implements RecordSink {
  readonly transport: MaybeSocket;
  /** Past SOCKET_QUEUE queued: no more DATA until 'drain'. A field, read once per record. */
  blocked = false;
  /** Reading is paused because the peer does not read: more than SOCKET_READ_LIMIT bytes wait on the transport. */
  readStopped = false;

  readonly #session: LinkSession;
  readonly #owner: AttachmentOwner;
  readonly #clock: Clock;
  readonly #sealer: RecordSealer;
  readonly #opener: RecordOpener;
  readonly #pingMs: number;
  readonly #deadMs: number;
  readonly #tick: LinkTimer;
  #lastRx = 0;
  #live = true;
  /** Corked until the current callback's microtasks run (see corkTurn). */
  #corked = false;

  constructor(transport: Duplex, keys: DirectionKeys, session: LinkSession, owner: AttachmentOwner, clock: Clock, o: { pingMs: number; deadMs: number }) {
    this.transport = transport;
    this.#session = session;
    this.#owner = owner;
    this.#clock = clock;
    this.#sealer = new RecordSealer(keys.send);
    this.#opener = new RecordOpener(keys.recv);
    this.#pingMs = Math.min(o.pingMs, o.deadMs / 3);
    this.#deadMs = o.deadMs;
    this.#tick = clock.timer(this.#onTick);
  }

  get live(): boolean {
    return this.#live;
  }

  /** Starts reading and pinging. */
  start(): void {
    const t = this.transport;
    t.setNoDelay?.(true);
    t.on('data', this.#onData);
    t.on('drain', this.#onDrain);
    t.on('error', this.#onGone);
    t.on('close', this.#onGone);
    t.on('end', this.#onGone);
    this.#lastRx = this.#clock.now();
    this.#tick.start(this.#pingMs);
    if (this.#owner.readerPaused()) t.pause();
    else t.resume();
  }

  /** Bytes that arrived on the transport before start(): what the handshake read past its last message. */
  feed(chunk: Buffer): void {
    this.#onData(chunk);
  }

  /**
   * Lets go of the transport. `last` ends it gracefully after that final record (or after what is
   * buffered, for an empty one) so a last ACK or CLOSE is not lost; 'linger' leaves it open, read
   * and discarded, until the peer closes it (or LINGER_MS pass); otherwise it is destroyed.
   */
  stop(last?: Buffer | 'linger'): void {
    if (!this.#live) return;
    this.#live = false;
    const t = this.transport;
    t.off('data', this.#onData);
    t.off('drain', this.#onDrain);
    t.off('error', this.#onGone);
    t.off('close', this.#onGone);
    t.off('end', this.#onGone);
    t.on('error', () => undefined);
    if (last === 'linger') {
      t.resume();
      t.once('end', () => t.destroy());
      setTimeout(() => t.destroy(), LINGER_MS).unref();
    } else if (last) {
      if (last.length > 0) t.end(last);
      else t.end();
      t.resume(); // discard whatever still arrives, so the transport can close
      setTimeout(() => t.destroy(), 2000).unref();
    } else {
      t.destroy();
    }
    this.#tick.dispose();
  }

  /** A CLOSE record under this epoch's keys (the session is reset for good). */
  closeRecord(): Buffer {
    return this.#sealer.close();
  }

  pause(): void {
    this.transport.pause();
  }

  /** Reading resumes unless the peer does not read what we send. */
  resumeReading(): void {
    if (!this.readStopped) this.transport.resume();
  }

  // RecordSink: the session's records, sealed under this epoch's keys.
  data(offset: number, pieces: Buffer[]): void {
    this.#send(this.#sealer.dataPieces(offset, pieces));
  }
  control(type: typeof Rec.ACK | typeof Rec.FIN | typeof Rec.PING | typeof Rec.PONG, value: number): void {
    this.#send(this.#sealer.control(type, value));
  }

  /**
   * Queues a record on the transport. We stop at our own mark rather than at write()'s false (a
   * socket's 16 KiB mark), so that a pump puts several 64 KiB records into one writev; 'drain'
   * still follows, as write() returned false.
   */
  #send(buf: Buffer | Buffer[]): void {
    const t = this.transport;
    if (Array.isArray(buf)) for (const b of buf) t.write(b);
    else t.write(buf);
    if (t.writableLength >= SOCKET_QUEUE) {
      this.blocked = true;
      if (t.writableLength > SOCKET_READ_LIMIT && !this.readStopped) {
        this.readStopped = true;
        t.pause();
      }
    }
  }

  /**
   * Corks the transport until the current callback's microtasks run, and has the session send
   * what was written meanwhile then. Every record that one event produces leaves in one writev
   * system call, not one each; and the writes of one event share a record: a gateway that reads
   * OPN and DAT together forwards both (the mux delivers on the next tick, before microtasks run)
   * in one record, so one seal here and one open at the peer instead of two each. Each write to a
   * loopback peer costs the sender the receiver's wakeup, and each record a cipher context at
   * both ends: most of a small request's cost.
   */
  corkTurn(): void {
    if (this.#corked) return;
    this.#corked = true;
    this.transport.cork();
    queueMicrotask(this.#endTurn);
  }

  readonly #endTurn = (): void => {
    this.#corked = false;
    if (this.#live) this.#session.pump();
    this.transport.uncork();
  };

  readonly #onDrain = (): void => {
    this.blocked = false;
    if (this.readStopped) {
      this.readStopped = false;
      if (!this.#owner.readerPaused()) this.transport.resume();
    }
    this.#owner.drained();
  };

  readonly #onData = (chunk: Buffer): void => {
    this.#lastRx = this.#clock.now();
    // Corked until the chunk's records have been handled, including what the reader does on the
    // next tick (the mux delivers then, and grants CREDIT): the ACK, PONG and CREDIT records
    // leave in one system call, not one each. Microtasks run after the next-tick queue.
    this.corkTurn();
    try {
      this.#opener.push(chunk, this.#onRecord);
    } catch (err) {
      // A record that fails authentication is never delivered: drop this transport; the session
      // resumes on a new one and the peer retransmits from what we acknowledged.
      this.#owner.lost(this, (err as Error).message, err as Error);
    }
  };

  readonly #onRecord = (r: Record): void => {
    if (this.#live) this.#session.receive(r);
  };

  readonly #onGone = (): void => {
    this.#owner.lost(this, 'connection lost');
  };

  readonly #onTick = (): void => {
    if (!this.#live) return;
    if (!this.#owner.readerPaused() && this.#clock.now() - this.#lastRx > this.#deadMs) {
      this.#owner.lost(this, `nothing received for ${this.#deadMs} ms`);
      return;
    }
    this.#session.ping();
    this.#tick.start(this.#pingMs);
  };
}
