import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { LinkProtocolError, LinkResetError } from './errors.ts';
import type { SessionSecrets } from './handshake.ts';
import { slice, totalLength } from './parts.ts';
import { MAX_DATA, Rec, RecordOpener, RecordSealer, type Record } from './record.ts';
import { ReplayBuffer } from './replay-buffer.ts';

export interface LinkOptions {
  /** Most unacknowledged bytes held for retransmission; writes wait while it is full. */
  window: number;
  /** PING interval on an attached socket. */
  pingMs: number;
  /** A socket from which nothing arrived for this long is dropped (half-open detection). */
  deadMs: number;
  /** Received bytes are acknowledged this long after the first unacknowledged one, at the latest. */
  ackDelayMs: number;
}

export const DEFAULT_LINK_OPTIONS: LinkOptions = { window: 8 * 1024 * 1024, pingMs: 5000, deadMs: 15_000, ackDelayMs: 5 };
/**
 * Received bytes are acknowledged at once after this many. Each ACK is a record of its own,
 * sealed, sent, woken up for and opened at the peer; every 64 KiB (one per DATA record) cost an
 * encrypted transfer a sixth of its speed. A sender whose window is smaller than this asks for
 * its ACK (a PING at half its window, #askAck), so no window waits for the ACK timer.
 */
const ACK_EVERY = 1024 * 1024;
/** Bytes queued on the socket before the stream waits for 'drain'. */
const SOCKET_QUEUE = 256 * 1024;
/**
 * Bytes queued on the socket beyond which we stop reading it until 'drain'. DATA stops at
 * SOCKET_QUEUE plus one record (≤ 64 KiB + 29), and an honest peer makes us add only a few
 * control records (an ACK per MiB or per 5 ms, a PONG per PING: one per pingMs and one per half
 * window): together far below this. A peer that sends records (PINGs, DATA that we ACK) and reads
 * nothing gets past it; then we stop reading it, and what it sends stays in TCP's buffers.
 */
export const SOCKET_READ_LIMIT = 512 * 1024;

export interface DirectionKeys {
  send: Buffer;
  recv: Buffer;
}

/**
 * One end of a link session: a Duplex whose bytes survive the loss of the TCP connection under it.
 * The owner (client.ts or server.ts) attaches a socket after each handshake; when the socket dies
 * the stream emits 'detached' and keeps its state — written but unacknowledged bytes in the replay
 * buffer, the count of bytes received — until a new socket is attached or the owner destroys it.
 * Stream positions count bytes, plus one virtual byte for FIN, so a half-close is retransmitted
 * like data.
 *
 * Events besides the Duplex ones: 'attached', 'detached' (reason), 'complete' (both directions
 * ended and acknowledged: the session can be forgotten).
 */
export class LinkStream extends Duplex {
  readonly secrets: SessionSecrets;
  readonly opts: LinkOptions;
  epoch = 0;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  rttMs: number | null = null;
  /** Counters for tests and metrics. */
  stats = { attaches: 0, retransmitted: 0, recordsIn: 0, duplicatesIn: 0, ackRequests: 0 };

  readonly #out = new ReplayBuffer();
  #sentTo = 0;
  #finAt: number | null = null;
  #finAcked = false;
  #recvNext = 0;
  #peerFin = false;
  #ackPending = 0;
  #ackTimer: NodeJS.Timeout | null = null;
  /** A PING went out asking for an ACK (half the window is unacknowledged); cleared by the next ACK. */
  #ackAsked = false;
  #socket: Socket | null = null;
  /** The socket corked until the current callback's microtasks run (see #corkTurn). */
  #corked: Socket | null = null;
  #sealer: RecordSealer | null = null;
  #opener: RecordOpener | null = null;
  #blocked = false;
  /** A write (or a corked batch of writes) waiting for window space, and its callback. */
  #pending: { chunks: Buffer[]; cb: (err?: Error | null) => void } | null = null;
  #pausedByUs = false;
  /** The socket is paused because the peer does not read: more than SOCKET_READ_LIMIT bytes wait on it. */
  #readStopped = false;
  #ping: NodeJS.Timeout | null = null;
  #lastRx = 0;
  #complete = false;
  #peerReset = false;
  #finalCb: ((err?: Error | null) => void) | null = null;

  constructor(secrets: SessionSecrets, opts: LinkOptions) {
    super({ allowHalfOpen: true, readableHighWaterMark: 256 * 1024, writableHighWaterMark: 64 * 1024 });
    this.secrets = secrets;
    this.opts = opts;
  }

  /** Bytes (and FIN) received in order: what a resume reports to the peer. */
  get received(): number {
    return this.#recvNext;
  }
  /** Unacknowledged bytes held for retransmission (≤ window). */
  get unacked(): number {
    return this.#out.size;
  }
  /** Whether reading the socket is paused because the peer does not read what we send. */
  get readStopped(): boolean {
    return this.#readStopped;
  }
  /** Every byte this stream holds in memory: replay buffer, queued reads and writes, and the socket's queue. */
  get buffered(): number {
    return this.#out.size + (this.#pending ? totalLength(this.#pending.chunks) : 0) + this.readableLength + this.writableLength + (this.#socket?.writableLength ?? 0);
  }
  get attached(): boolean {
    return this.#socket !== null;
  }

  /** Puts a freshly handshaken socket under the stream; `peerReceived` is what the peer already has. */
  attach(socket: Socket, keys: DirectionKeys, peerReceived: number, leftover: Buffer): void {
    if (this.destroyed || this.#complete) {
      socket.destroy();
      return;
    }
    // Newer epoch wins: the old socket is dropped at once, never waited on.
    if (this.#socket) this.#detach('replaced by a newer connection', false);
    const maxAck = this.#out.end + (this.#finAt !== null ? 1 : 0);
    if (peerReceived < this.#out.acked || peerReceived > maxAck) {
      socket.destroy();
      this.destroy(new LinkProtocolError(`resume position ${peerReceived} outside ${this.#out.acked}..${maxAck}`));
      return;
    }
    this.#sealer = new RecordSealer(keys.send);
    this.#opener = new RecordOpener(keys.recv);
    this.#socket = socket;
    this.#blocked = false;
    this.#readStopped = false;
    this.#ackPending = 0;
    this.#ackAsked = false;
    this.remoteAddress = socket.remoteAddress;
    this.remotePort = socket.remotePort;
    this.stats.attaches++;
    this.#applyAck(peerReceived);
    this.stats.retransmitted += Math.max(0, Math.min(this.#sentTo, this.#out.end) - peerReceived);
    this.#sentTo = peerReceived;
    socket.setNoDelay(true);
    socket.on('data', this.#onSocketData);
    socket.on('drain', this.#onDrain);
    socket.on('error', this.#onSocketGone);
    socket.on('close', this.#onSocketGone);
    socket.on('end', this.#onSocketGone);
    this.#lastRx = Date.now();
    this.#ping = setInterval(this.#tick, Math.min(this.opts.pingMs, this.opts.deadMs / 3));
    this.#ping.unref();
    if (this.#pausedByUs) socket.pause();
    else socket.resume();
    this.emit('attached');
    if (leftover.length > 0) this.#onSocketData(leftover);
    // The resume may have acknowledged bytes: a write waiting for window space can go on now.
    this.#admit();
  }

  readonly #onSocketGone = (): void => {
    this.#detach('connection lost', true);
  };

  /**
   * Lets go of the socket. `last` ends it gracefully after that final record (or after what is
   * buffered, for an empty one) so a last ACK or CLOSE is not lost; otherwise it is destroyed.
   */
  #detach(reason: string, announce: boolean, last?: Buffer): void {
    const s = this.#socket;
    if (!s) return;
    s.off('data', this.#onSocketData);
    s.off('drain', this.#onDrain);
    s.off('error', this.#onSocketGone);
    s.off('close', this.#onSocketGone);
    s.off('end', this.#onSocketGone);
    s.on('error', () => undefined);
    if (last) {
      if (last.length > 0) s.end(last);
      else s.end();
      s.resume(); // discard whatever still arrives, so the socket can close
      setTimeout(() => s.destroy(), 2000).unref();
    } else {
      s.destroy();
    }
    this.#socket = null;
    this.#sealer = null;
    this.#opener = null;
    if (this.#ping) clearInterval(this.#ping);
    if (this.#ackTimer) clearTimeout(this.#ackTimer);
    this.#ping = null;
    this.#ackTimer = null;
    if (announce && !this.destroyed && !this.#complete) this.emit('detached', reason);
  }

  /** Drops the current socket (tests, and the client when it wants to move to a new path). */
  dropConnection(reason = 'dropped'): void {
    this.#detach(reason, true);
  }

  readonly #tick = (): void => {
    if (!this.#socket) return;
    if (!this.#pausedByUs && Date.now() - this.#lastRx > this.opts.deadMs) {
      this.#detach(`nothing received for ${this.opts.deadMs} ms`, true);
      return;
    }
    this.#send(this.#sealer!.control(Rec.PING, Date.now()));
  };

  /**
   * Queues a record on the socket. We stop at our own mark rather than at write()'s false (the
   * socket's 16 KiB mark), so that a pump puts several 64 KiB records into one writev; 'drain'
   * still follows, as write() returned false.
   */
  #send(buf: Buffer | Buffer[]): void {
    const s = this.#socket!;
    if (Array.isArray(buf)) for (const b of buf) s.write(b);
    else s.write(buf);
    if (s.writableLength >= SOCKET_QUEUE) {
      this.#blocked = true;
      if (s.writableLength > SOCKET_READ_LIMIT && !this.#readStopped) {
        this.#readStopped = true;
        s.pause();
      }
    }
  }

  readonly #onDrain = (): void => {
    this.#blocked = false;
    if (this.#readStopped) {
      this.#readStopped = false;
      if (!this.#pausedByUs) this.#socket?.resume();
    }
    this.#pump();
  };

  /**
   * Sends unsent bytes (and FIN) of the replay buffer while the socket takes them, at the end of
   * the current callback (#corkTurn): what one event writes becomes one record, not one each.
   */
  #pump(): void {
    const s = this.#socket;
    if (!s || this.#blocked) return;
    this.#corkTurn(s);
  }

  /**
   * Corks the socket until the current callback's microtasks run, and seals the data written
   * meanwhile then. Every record that one event produces leaves in one writev system call, not one
   * each; and the writes of one event share a record: a gateway that reads OPN and DAT together
   * forwards both (the mux delivers on the next tick, before microtasks run) in one record, so
   * one seal here and one open at the peer instead of two each. Each write to a loopback peer
   * costs the sender the receiver's wakeup, and each record a cipher context at both ends: most
   * of a small request's cost.
   */
  #corkTurn(s: Socket): void {
    if (this.#corked === s) return;
    this.#corked = s;
    s.cork();
    queueMicrotask(() => {
      this.#corked = null;
      if (this.#socket === s) this.#pumpRecords();
      s.uncork();
    });
  }

  #pumpRecords(): void {
    while (this.#socket && !this.#blocked) {
      if (this.#sentTo < this.#out.end) {
        const n = Math.min(MAX_DATA, this.#out.end - this.#sentTo);
        this.#send(this.#sealer!.dataPieces(this.#sentTo, this.#out.pieces(this.#sentTo, n)));
        this.#sentTo += n;
        this.#askAck();
      } else if (this.#finAt !== null && this.#sentTo === this.#finAt) {
        this.#send(this.#sealer!.control(Rec.FIN, this.#finAt));
        this.#sentTo = this.#finAt + 1;
      } else {
        return;
      }
    }
  }

  /** Takes as much of the pending write as the window allows. */
  #admit(): void {
    const p = this.#pending;
    if (p) {
      let room = this.opts.window - this.#out.size;
      const chunks = p.chunks;
      let i = 0;
      for (; i < chunks.length && room > 0; i++) {
        const c = chunks[i]!;
        if (c.length > room) {
          this.#out.append(c.subarray(0, room));
          chunks[i] = c.subarray(room);
          break;
        }
        this.#out.append(c);
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
    this.#finAt = this.#out.end;
    this.#finalCb = cb;
    this.#pump();
  }

  override _read(): void {
    if (this.#pausedByUs) {
      this.#pausedByUs = false;
      if (!this.#readStopped) this.#socket?.resume();
    }
  }

  readonly #onSocketData = (chunk: Buffer): void => {
    this.#lastRx = Date.now();
    // Corked until the chunk's records have been handled, including what the reader does on the
    // next tick (the mux delivers then, and grants CREDIT): the ACK, PONG and CREDIT records
    // leave in one system call, not one each. Microtasks run after the next-tick queue.
    this.#corkTurn(this.#socket!);
    try {
      this.#opener!.push(chunk, this.#onRecord);
    } catch (err) {
      // A record that fails authentication is never delivered: drop this socket; the session
      // resumes on a new one and the peer retransmits from what we acknowledged.
      this.emit('protocolError', err);
      this.#detach((err as Error).message, true);
    }
  };

  readonly #onRecord = (r: Record): void => {
    if (!this.#socket) return;
    this.stats.recordsIn++;
    switch (r.type) {
      case Rec.DATA: return this.#onData(r.offset, r.data);
      case Rec.ACK:
        if (!this.#applyAck(r.recv)) throw new LinkProtocolError(`ACK ${r.recv} beyond what was sent`);
        this.#admit();
        return;
      case Rec.FIN: return this.#onFin(r.offset);
      case Rec.PING:
        if (this.#ackPending > 0) this.#sendAck();
        this.#send(this.#sealer!.control(Rec.PONG, r.stamp));
        return;
      case Rec.PONG: this.rttMs = Math.max(0, Date.now() - r.stamp); return;
      case Rec.CLOSE:
        this.#peerReset = true;
        this.destroy(new LinkResetError());
        return;
    }
  };

  #onData(offset: number, pieces: Buffer[]): void {
    const length = totalLength(pieces);
    const end = offset + length;
    if (this.#peerFin || offset > this.#recvNext) throw new LinkProtocolError(`DATA at ${offset} but expected ${this.#recvNext}`);
    if (end <= this.#recvNext) {
      this.stats.duplicatesIn++;
      this.#scheduleAck(0);
      return;
    }
    const fresh = offset === this.#recvNext ? pieces : slice(pieces, this.#recvNext - offset, length);
    this.#scheduleAck(end - this.#recvNext);
    this.#recvNext = end;
    let more = true;
    for (const p of fresh) more = this.push(p);
    if (!more && !this.#pausedByUs) {
      this.#pausedByUs = true;
      this.#socket?.pause();
    }
  }

  #onFin(offset: number): void {
    if (this.#peerFin && offset + 1 === this.#recvNext) return; // retransmitted FIN
    if (offset !== this.#recvNext) throw new LinkProtocolError(`FIN at ${offset} but expected ${this.#recvNext}`);
    this.#peerFin = true;
    this.#recvNext += 1;
    this.#sendAck();
    this.push(null);
    this.#checkComplete();
  }

  /**
   * Once half the window is sent and unacknowledged, a PING asks the peer for its ACK now (the
   * peer answers every PING with its ACK, if it owes one, and a PONG): the peer acknowledges
   * only every ACK_EVERY bytes by itself and does not know our window.
   */
  #askAck(): void {
    if (this.#ackAsked || this.#sentTo - this.#out.acked < this.opts.window / 2) return;
    this.#ackAsked = true;
    this.stats.ackRequests++;
    this.#send(this.#sealer!.control(Rec.PING, Date.now()));
  }

  #applyAck(recv: number): boolean {
    const dataEnd = this.#out.end;
    if (recv > dataEnd + (this.#finAt !== null ? 1 : 0)) return false;
    if (recv > this.#out.acked) this.#ackAsked = false;
    this.#out.ack(Math.min(recv, dataEnd));
    if (this.#finAt !== null && recv > this.#finAt && !this.#finAcked) {
      this.#finAcked = true;
      const cb = this.#finalCb;
      this.#finalCb = null;
      cb?.();
    }
    this.#checkComplete();
    return true;
  }

  #scheduleAck(n: number): void {
    this.#ackPending += n;
    if (this.#ackPending >= ACK_EVERY || n === 0) {
      this.#sendAck();
      return;
    }
    if (!this.#ackTimer) {
      this.#ackTimer = setTimeout(() => {
        this.#ackTimer = null;
        this.#sendAck();
      }, this.opts.ackDelayMs);
      this.#ackTimer.unref();
    }
  }

  #sendAck(): void {
    if (this.#ackTimer) {
      clearTimeout(this.#ackTimer);
      this.#ackTimer = null;
    }
    this.#ackPending = 0;
    if (this.#socket) this.#send(this.#sealer!.control(Rec.ACK, this.#recvNext));
  }

  #checkComplete(): void {
    if (this.#complete || !this.#peerFin || !this.#finAcked) return;
    this.#complete = true;
    this.#detach('complete', false, Buffer.alloc(0));
    this.emit('complete');
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // Tell the peer this session is over for good (CLOSE), unless it ended normally or the peer reset it.
    if (this.#socket && !this.#complete && !this.#peerReset) this.#detach('destroyed', false, this.#sealer!.close());
    else this.#detach('destroyed', false);
    this.#pending?.cb(err ?? new LinkResetError());
    this.#pending = null;
    this.#finalCb = null;
    cb(err);
  }
}
