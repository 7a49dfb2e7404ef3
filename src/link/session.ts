import type { Clock, LinkTimer } from './clock.ts';
import { LinkProtocolError, ResumeError } from './errors.ts';
import { slice, totalLength } from './parts.ts';
import { COMPAT_DATA, MAX_DATA, Rec, type Record } from './record.ts';
import { ReplayBuffer } from './replay-buffer.ts';

/**
 * Received bytes are acknowledged at once after this many. Each ACK is a record of its own,
 * sealed, sent, woken up for and opened at the peer; every 64 KiB (one per DATA record) cost an
 * encrypted transfer a sixth of its speed. A sender whose window is smaller than this asks for
 * its ACK (a PING at half its window, #askAck), so no window waits for the ACK timer.
 */
export const ACK_EVERY = 1024 * 1024;

/**
 * Where the session's records go: the transport it is attached to (attachment.ts seals them and
 * writes them to a Duplex; tests collect them). Methods rather than record objects, so the data
 * path allocates nothing for a record on its way out.
 */
export interface RecordSink {
  /** The transport takes nothing more until it drains: the session stops sending records. */
  readonly blocked: boolean;
  /** A DATA record: `pieces` (≤ recordData bytes, views of the replay buffer) at stream position `offset`. */
  data(offset: number, pieces: Buffer[]): void;
  /** An ACK or FIN (a position), or a PING or PONG (a timestamp). */
  control(type: typeof Rec.ACK | typeof Rec.FIN | typeof Rec.PING | typeof Rec.PONG, value: number): void;
}

/** What the session tells its owner (LinkStream). Callbacks, not events: `deliver` is on the data path. */
export interface LinkSessionInit {
  /** Most unacknowledged bytes held for retransmission. */
  window: number;
  /** Received bytes are acknowledged this long after the first unacknowledged one, at the latest. */
  ackDelayMs: number;
  /** Most bytes a DATA record carries (≤ MAX_DATA; default COMPAT_DATA, see record.ts). */
  recordData?: number;
  clock: Clock;
  /** Fresh bytes, in order, each delivered once. */
  deliver(pieces: Buffer[]): void;
  /** The peer's FIN arrived in order: no more bytes will be delivered. */
  peerEnded(): void;
  /** The peer acknowledged our FIN: it holds every byte we wrote. */
  finAcknowledged(): void;
  /** Both directions ended and were acknowledged: the session can be forgotten. */
  completed(): void;
  /** The peer reset the session (CLOSE). */
  reset(): void;
  /** An ACK freed window space: writes waiting for room can go on. */
  acknowledged(): void;
}

/**
 * One end of a link session as a pure state machine (docs/link.md §3): stream positions, the
 * replay buffer, the ACK policy, FIN and the checks a resume must pass. Records in (`receive`),
 * records out (to the RecordSink it is attached to), time from an injected Clock; no sockets,
 * no crypto, no Node streams — the same session can resume over any transport (attachment.ts).
 *
 * Positions count bytes from 0, plus one virtual byte for FIN, so a half-close is retransmitted
 * like data.
 */
export class LinkSession {
  /** Counters for tests and metrics. */
  readonly stats = { attaches: 0, retransmitted: 0, recordsIn: 0, duplicatesIn: 0, ackRequests: 0 };
  rttMs: number | null = null;

  readonly #init: LinkSessionInit;
  readonly #clock: Clock;
  #recordData: number;
  readonly #out = new ReplayBuffer();
  #epoch = 0;
  #sink: RecordSink | null = null;
  #sentTo = 0;
  #finAt: number | null = null;
  #finAcked = false;
  #recvNext = 0;
  #peerFin = false;
  #ackPending = 0;
  readonly #ackTimer: LinkTimer;
  /** A PING went out asking for an ACK (half the window is unacknowledged); cleared by the next ACK. */
  #ackAsked = false;
  #complete = false;
  /** While a migration's proof is out, ACKs report at most this (holdAcks). */
  #ackCap: number | null = null;
  /** The last position an ACK reported. */
  #ackedTo = 0;

  constructor(init: LinkSessionInit) {
    this.#init = init;
    this.#clock = init.clock;
    this.#recordData = init.recordData ?? COMPAT_DATA;
    if (!(this.#recordData > 0 && this.#recordData <= MAX_DATA)) throw new RangeError(`recordData must be 1..${MAX_DATA}`);
    this.#ackTimer = init.clock.timer(() => this.#sendAck());
  }

  /** The connection count of this session: 0 for the NEW handshake's, then each resume's. */
  /**
   * Raises the most a DATA record carries (≤ MAX_DATA), once the peer is known to accept larger
   * records: the mux calls it through LinkStream.useLargeRecords() when HELLO negotiated BIG,
   * which only peers whose openers take MAX_DATA offer.
   */
  setRecordData(n: number): void {
    if (!(n > 0 && n <= MAX_DATA)) throw new RangeError(`recordData must be 1..${MAX_DATA}`);
    this.#recordData = n;
  }

  get epoch(): number {
    return this.#epoch;
  }
  /** Bytes (and FIN) received in order: what a resume reports to the peer. */
  get received(): number {
    return this.#recvNext;
  }
  /** Unacknowledged bytes held for retransmission (≤ window). */
  get unacked(): number {
    return this.#out.size;
  }
  /** Room left in the window for new bytes. */
  get room(): number {
    return this.#init.window - this.#out.size;
  }
  get complete(): boolean {
    return this.#complete;
  }
  get attached(): boolean {
    return this.#sink !== null;
  }
  /** Our FIN position once end() was called. */
  get ended(): boolean {
    return this.#finAt !== null;
  }

  /**
   * A resume's epoch check (resume.ts calls this, and nothing else changes the epoch): newer
   * epoch wins, a stale one is a replay of an older resume and changes nothing.
   */
  enterEpoch(epoch: number): void {
    if (epoch <= this.#epoch) throw new ResumeError('stale-epoch', `epoch ${epoch} is not newer than ${this.#epoch}`);
    this.#epoch = epoch;
  }

  /** The positions the peer may report on resume: from what it acknowledged to what we sent (FIN included). */
  checkPeerReceived(peerReceived: number): void {
    const max = this.#out.end + (this.#finAt !== null ? 1 : 0);
    if (peerReceived < this.#out.acked || peerReceived > max) {
      throw new ResumeError('bad-position', `resume position ${peerReceived} outside ${this.#out.acked}..${max}`);
    }
  }

  /**
   * Sends to `sink` from now on, starting from `peerReceived` (what the peer has: every later
   * byte is sent again). Throws ResumeError('bad-position') without attaching if the peer reports
   * a position we cannot resume from.
   */
  attach(sink: RecordSink, peerReceived: number): void {
    this.checkPeerReceived(peerReceived);
    this.#sink = sink;
    this.#ackPending = 0;
    this.#ackAsked = false;
    this.stats.attaches++;
    const sentTo = this.#sentTo;
    this.#applyAck(peerReceived);
    this.stats.retransmitted += Math.max(0, Math.min(sentTo, this.#out.end) - peerReceived);
    this.#sentTo = peerReceived;
  }

  /** The transport is gone: keep everything, send nothing until the next attach. */
  detach(): void {
    this.#sink = null;
    this.#ackTimer.stop();
  }

  /**
   * From now until releaseAcks(), ACKs report at most what was received now. A client moving the
   * session to a new transport (client.ts, migrateLink) calls this as it sends its resume proof,
   * which carries `received`: the old transport keeps carrying data meanwhile, and an ACK beyond
   * the proof that reached the server before the proof would put the proof's position below what
   * the server holds (checkPeerReceived: 'bad-position', the session lost).
   */
  holdAcks(): void {
    this.#ackCap = this.#recvNext;
  }

  /** Ends holdAcks(); acknowledges at once what was held back, on whatever transport is attached now. */
  releaseAcks(): void {
    if (this.#ackCap === null) return;
    this.#ackCap = null;
    if (this.#recvNext > this.#ackedTo) this.#sendAck();
    this.#checkComplete();
  }

  /** Stops the session's timer for good (the owner is destroyed). */
  dispose(): void {
    this.#sink = null;
    this.#ackTimer.dispose();
  }

  /** Holds `b` for sending and retransmission; the caller keeps within `room`. */
  append(b: Buffer): void {
    this.#out.append(b);
  }

  /** Our end of the stream: FIN follows the bytes written so far. */
  end(): void {
    this.#finAt = this.#out.end;
  }

  /** Sends unsent bytes (and FIN) of the replay buffer while the sink takes them. */
  pump(): void {
    for (let sink = this.#sink; sink !== null && !sink.blocked; sink = this.#sink) {
      if (this.#sentTo < this.#out.end) {
        const n = Math.min(this.#recordData, this.#out.end - this.#sentTo);
        sink.data(this.#sentTo, this.#out.pieces(this.#sentTo, n));
        this.#sentTo += n;
        this.#askAck(sink);
      } else if (this.#finAt !== null && this.#sentTo === this.#finAt) {
        sink.control(Rec.FIN, this.#finAt);
        this.#sentTo = this.#finAt + 1;
      } else {
        return;
      }
    }
  }

  /** A liveness PING (the adapter's timer); answered by a PONG, which measures the RTT. */
  ping(): void {
    this.#sink?.control(Rec.PING, this.#clock.now());
  }

  /** One authentic record from the attached transport. Throws LinkProtocolError for a record that breaks the protocol. */
  receive(r: Record): void {
    const sink = this.#sink;
    if (sink === null) return;
    this.stats.recordsIn++;
    switch (r.type) {
      case Rec.DATA: return this.#onData(r.offset, r.data);
      case Rec.ACK:
        if (!this.#applyAck(r.recv)) throw new LinkProtocolError(`ACK ${r.recv} beyond what was sent`);
        this.#init.acknowledged();
        return;
      case Rec.FIN: return this.#onFin(r.offset);
      case Rec.PING:
        if (this.#ackPending > 0) this.#sendAck();
        sink.control(Rec.PONG, r.stamp);
        return;
      case Rec.PONG: this.rttMs = Math.max(0, this.#clock.now() - r.stamp); return;
      case Rec.CLOSE: return this.#init.reset();
    }
  }

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
    this.#init.deliver(fresh);
  }

  #onFin(offset: number): void {
    if (this.#peerFin && offset + 1 === this.#recvNext) return; // retransmitted FIN
    if (offset !== this.#recvNext) throw new LinkProtocolError(`FIN at ${offset} but expected ${this.#recvNext}`);
    this.#peerFin = true;
    this.#recvNext += 1;
    this.#sendAck();
    this.#init.peerEnded();
    this.#checkComplete();
  }

  /**
   * Once half the window is sent and unacknowledged, a PING asks the peer for its ACK now (the
   * peer answers every PING with its ACK, if it owes one, and a PONG): the peer acknowledges
   * only every ACK_EVERY bytes by itself and does not know our window.
   */
  #askAck(sink: RecordSink): void {
    if (this.#ackAsked || this.#sentTo - this.#out.acked < this.#init.window / 2) return;
    this.#ackAsked = true;
    this.stats.ackRequests++;
    sink.control(Rec.PING, this.#clock.now());
  }

  #applyAck(recv: number): boolean {
    const dataEnd = this.#out.end;
    if (recv > dataEnd + (this.#finAt !== null ? 1 : 0)) return false;
    if (recv > this.#out.acked) this.#ackAsked = false;
    this.#out.ack(Math.min(recv, dataEnd));
    if (this.#finAt !== null && recv > this.#finAt && !this.#finAcked) {
      this.#finAcked = true;
      this.#init.finAcknowledged();
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
    if (!this.#ackTimer.running) this.#ackTimer.start(this.#init.ackDelayMs);
  }

  #sendAck(): void {
    this.#ackTimer.stop();
    this.#ackPending = 0;
    const sink = this.#sink;
    if (sink === null) return;
    const at = this.#ackCap === null ? this.#recvNext : Math.min(this.#recvNext, this.#ackCap);
    this.#ackedTo = at;
    sink.control(Rec.ACK, at);
  }

  #checkComplete(): void {
    // Not while ACKs are held: the peer must first learn that its FIN arrived (releaseAcks).
    if (this.#complete || !this.#peerFin || !this.#finAcked || this.#ackCap !== null) return;
    this.#complete = true;
    this.#init.completed();
  }
}
