import { randomInt } from 'node:crypto';
import type { Duplex } from 'node:stream';
import {
  ALL_FEATURES, BIG_HEADER_SIZE, Command, Decoder, MAX_BIG_PAYLOAD, decodeCredit, decodeHello, encodeCls, encodeCmd, encodeCredit, encodeDatHeaders, HEADER_SIZE, MAX_DAT_PAYLOAD,
  encodeHello, encodeOpn, Feature, FrameType, PROTOCOL_VERSION, SessionStateError,
  bytesToIp, ipToBytes, type CmdFrame, type Frame, type Hello,
} from '../protocol/index.ts';
import { SessionLimitError, LinkDeadError } from './errors.ts';
import { MuxSession, type SessionHost } from './session.ts';

export { LinkDeadError, SessionLimitError } from './errors.ts';

/** A link that can carry larger records once its peer is known to take them (LinkStream). */
interface LargeRecords {
  useLargeRecords(): void;
}

export type RefuseReason = 'session_cap' | 'not_accepted';

export interface MuxInit {
  /** The side that opens sessions (the gateway) or accepts them (the agent). */
  role: 'gateway' | 'agent';
  /** Our receive window per session, announced in HELLO. */
  window?: number;
  /** The most a session's receive window grows to while it tunes itself (src/mux/window.ts). */
  windowMax?: number;
  /** Extension features we offer; 0 speaks the seed protocol only. */
  features?: number;
  /** PING interval; the link is declared dead after `deadAfterMs` with no bytes received (0: never — the encrypted link has its own liveness and resumes). */
  keepaliveMs?: number;
  deadAfterMs?: number;
  /**
   * Most sessions open at once on this link. An OPN beyond it is refused with CLS (onRefuse
   * 'session_cap'); open() beyond it throws SessionLimitError.
   */
  maxSessions?: number;
  /**
   * Bytes queued on the link (its writableLength) beyond which the mux stops reading it until
   * 'drain' (docs/architecture.md, "Backpressure"). Honest traffic stays far below it.
   */
  maxQueued?: number;
  /** An OPN was refused without reaching onOpen: over the session cap, or this side accepts none. */
  onRefuse?: (reason: RefuseReason) => void;
  /** Agent side: an OPN arrived. Call session.close() to refuse. */
  onOpen?: (session: MuxSession, port: number, address: string) => void;
  /** Commands the mux does not handle itself (PORT QUERY, EXPOSE, unknown ones). */
  onCommand?: (f: CmdFrame) => void;
  /** A PONG answered one of our PINGs: one round-trip measurement, in milliseconds (also kept in rttMs). */
  onRtt?: (ms: number) => void;
  /** HELLO exchange completed; features is the negotiated set. */
  onHello?: (features: number) => void;
  /** The link is gone; err is set for protocol errors and dead links. Called once. */
  onClose?: (err?: Error) => void;
  now?: () => number;
}

export const DEFAULT_WINDOW = 256 * 1024;
export const DEFAULT_WINDOW_MAX = 2 * 1024 * 1024;
/** Default session cap per link (`max_sessions_per_link` at the gateway, `max_sessions` at the agent). */
export const DEFAULT_MAX_SESSIONS = 4096;
/**
 * Default bound on the bytes a mux leaves queued on its link before it stops reading. What an
 * honest peer makes us queue stays below ~0.6 MiB: DAT stops once a write returns false (the
 * link's mark, ≤ 64 KiB, plus one session batch of 256 KiB and its headers), and control frames
 * are bounded per session (an OPN, at most three CREDITs owed, a FIN, a CLS: < 72 bytes × 4,096
 * sessions = 288 KiB) or per keepalive (one PING, one PONG). Only a peer that sends and does not
 * read gets past it: then its frames stay unread (TCP backpressure) instead of our answers
 * piling up in memory.
 */
export const DEFAULT_MAX_QUEUED = 1024 * 1024;

/**
 * The bound for a link that may carry `maxSessions` sessions: the control frames an honest peer
 * makes us queue grow with the sessions (< 72 bytes each, above), so a cap raised past 4,096
 * raises the bound by 128 bytes a session, up to 8.5 MiB (65,536 sessions).
 */
export function maxQueuedFor(maxSessions: number): number {
  return Math.max(DEFAULT_MAX_QUEUED, 512 * 1024 + 128 * Math.min(maxSessions, 65_536));
}

/**
 * A DK chunk-protocol multiplexer over one link (a TCP socket, or later the encrypted link).
 * Owns the decoder, the session table, HELLO negotiation, keepalive and dead-link detection.
 */
export class Mux implements SessionHost {
  readonly link: Duplex;
  readonly role: 'gateway' | 'agent';
  readonly window: number;
  readonly windowMax: number;
  readonly offered: number;
  readonly #init: MuxInit;
  readonly #decoder = new Decoder();
  readonly sessions = new Map<number, MuxSession>();
  #peerHello: Hello | null = null;
  #helloSent = false;
  #features = 0;
  #blocked = false;
  /** Frames written while the link was blocked, gathered for one write on 'drain' (#write). */
  #ctl: Buffer | null = null;
  #ctlLen = 0;
  /** Reading is paused because more than maxQueued bytes wait on the link (cleared on 'drain'). */
  #readStopped = false;
  readonly #maxQueued: number;
  readonly #maxSessions: number;
  readonly #waiting = new Set<MuxSession>();
  readonly #congested = new Set<MuxSession>();
  /** Sessions that received DAT during the current link read, delivered after it (#deliverTouched). */
  #touched: MuxSession[] = [];
  /** OPN frames held back until their session's first frame or the end of the next loop turn (open()). */
  readonly #unsentOpn = new Map<number, Buffer>();
  #closed = false;
  #lastRx: number;
  #timer: NodeJS.Timeout | null = null;
  readonly #now: () => number;
  rttMs: number | null = null;
  bytesRx = 0;
  bytesTx = 0;

  constructor(link: Duplex, init: MuxInit) {
    this.link = link;
    this.role = init.role;
    this.#init = init;
    this.window = init.window ?? DEFAULT_WINDOW;
    this.windowMax = init.windowMax ?? DEFAULT_WINDOW_MAX; // RecvWindow holds it to ≥ window
    this.offered = init.features ?? ALL_FEATURES;
    this.#now = init.now ?? Date.now;
    this.#maxSessions = init.maxSessions ?? DEFAULT_MAX_SESSIONS;
    this.#maxQueued = init.maxQueued ?? maxQueuedFor(this.#maxSessions);
    this.#lastRx = this.#now();
    link.on('data', this.#onData);
    link.on('drain', this.#onDrain);
    link.on('error', (err: Error) => this.destroy(err));
    link.on('close', () => this.destroy());
    link.on('end', () => this.destroy());
    const keepalive = init.keepaliveMs ?? 15_000;
    const dead = init.deadAfterMs ?? keepalive * 3;
    if (keepalive > 0) {
      this.#timer = setInterval(() => this.#tick(dead), keepalive);
      this.#timer.unref();
    }
    // The agent speaks first (after its 32-byte handshake); the gateway answers, so a seed-only
    // gateway simply ignores our HELLO (unknown commands are ignored, SPEC §4).
    if (this.role === 'agent' && this.offered !== 0) this.#sendHello();
  }

  get closed(): boolean {
    return this.#closed;
  }
  /** Negotiated extension features (0 until HELLO has been exchanged). */
  get features(): number {
    return this.#features;
  }
  get peerHello(): Hello | null {
    return this.#peerHello;
  }
  get writable(): boolean {
    return !this.#blocked && !this.#closed;
  }
  /** Whether reading the link is paused because the peer does not take what we write. */
  get readStopped(): boolean {
    return this.#readStopped;
  }

  /** Feeds bytes that arrived before the mux took over the link (after the handshake). */
  feed(chunk: Buffer): void {
    if (chunk.length > 0) this.#onData(chunk);
  }

  /** Gateway side: opens a session to address:port on the agent. */
  open(port: number, address: string): MuxSession {
    if (this.#closed) throw new SessionStateError('link is closed');
    if (this.sessions.size >= this.#maxSessions) throw new SessionLimitError(this.#maxSessions);
    let id: number;
    do id = randomInt(1, 2 ** 32 - 1); while (this.sessions.has(id));
    const s = this.#newSession(id);
    // Held back for a moment: a client that speaks first (HTTP, TLS) has usually sent its first
    // bytes by the time the next loop turn polls its socket, and then OPN leaves with them, in one
    // write and one record, instead of a write (a wakeup at the peer) and a record of its own. A
    // server that speaks first (SSH, SMTP) gets its OPN a loop turn later: its banner took as long
    // as before, within the noise (docs/performance.md, item 25).
    if (this.#unsentOpn.set(id, encodeOpn(id, port, ipToBytes(address))).size === 1) {
      setImmediate(() => setImmediate(this.#flushOpns));
    }
    return s;
  }

  readonly #flushOpns = (): void => {
    if (this.#closed || this.#unsentOpn.size === 0) return;
    this.link.cork();
    for (const opn of this.#unsentOpn.values()) this.#write(opn);
    this.#unsentOpn.clear();
    this.link.uncork();
  };

  /** Sends session's OPN first if it was held back: every frame of a session follows its OPN. */
  #opnFirst(session: number): void {
    if (this.#unsentOpn.size === 0) return; // the usual case: no lookup
    const opn = this.#unsentOpn.get(session);
    if (opn) {
      this.#unsentOpn.delete(session);
      this.#write(opn);
    }
  }

  command(id: number, command: number, params?: Uint8Array): void {
    if (!this.#closed) this.#write(encodeCmd(id, command, params));
  }

  destroy(err?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsentOpn.clear();
    this.#ctl = null;
    this.#ctlLen = 0;
    if (this.#timer) clearInterval(this.#timer);
    for (const s of [...this.sessions.values()]) s.onLinkDown();
    this.sessions.clear();
    this.link.destroy();
    this.#init.onClose?.(err);
  }

  #newSession(id: number): MuxSession {
    const flow = (this.#features & Feature.FLOW) !== 0;
    const s = new MuxSession(id, this, flow, this.window, this.#peerHello?.window ?? 0, this.windowMax);
    this.sessions.set(id, s);
    return s;
  }

  #sendHello(): void {
    this.#helloSent = true;
    this.#write(encodeCmd(0, Command.HELLO, encodeHello({ version: PROTOCOL_VERSION, features: this.offered, window: this.window })));
  }

  /**
   * Writes a frame other than DAT (those leave only while the link is not blocked, sendData).
   * While the link is blocked, frames are gathered in #ctl and written as one on 'drain', in
   * order and before any session's data: a 6-byte CLS written on its own would cost ~30 times its
   * size in the link's queue (a Buffer and a queue entry each), so a bound on queued bytes would
   * not bound memory.
   */
  #write(buf: Buffer): void {
    this.bytesTx += buf.length;
    if (this.#blocked) {
      this.#queueCtl(buf);
      this.#checkQueued();
    } else if (!this.link.write(buf)) {
      this.#blocked = true;
      this.#checkQueued();
    }
  }

  #queueCtl(buf: Buffer): void {
    const need = this.#ctlLen + buf.length;
    if (!this.#ctl || need > this.#ctl.length) {
      const grown = Buffer.allocUnsafe(Math.max(4096, 2 * need));
      if (this.#ctl) this.#ctl.copy(grown, 0, 0, this.#ctlLen);
      this.#ctl = grown;
    }
    buf.copy(this.#ctl, this.#ctlLen);
    this.#ctlLen = need;
  }

  /** Bytes we wrote that the peer has not taken yet: the link's queue and the frames held in #ctl. */
  get queued(): number {
    return this.link.writableLength + this.#ctlLen;
  }

  /**
   * Every write ends here once the link refused more (write() returned false): past maxQueued
   * bytes the peer is not reading what we send, so we stop reading what it sends — each frame
   * we read may make us write (CLS, PONG, CREDIT, scan answers) — until the link drains. One
   * read's answers at most land beyond the bound.
   */
  #checkQueued(): void {
    if (this.#readStopped || this.queued <= this.#maxQueued) return;
    this.#readStopped = true;
    this.link.pause();
  }

  /** Reading goes on unless the peer does not read (#readStopped) or, in legacy mode, a session's socket is full. */
  #updateReading(): void {
    if (this.#closed) return;
    if (this.#readStopped || this.#congested.size > 0) this.link.pause();
    else this.link.resume();
  }

  readonly #onDrain = (): void => {
    this.#blocked = false;
    if (this.#ctlLen > 0) {
      const ctl = this.#ctl!.subarray(0, this.#ctlLen);
      this.#ctl = null; // the link holds it now: never written into again
      this.#ctlLen = 0;
      this.bytesTx -= ctl.length; // counted when queued
      this.#write(ctl);
    }
    if (this.#readStopped && this.queued <= this.#maxQueued) {
      this.#readStopped = false;
      this.#updateReading();
    }
    const waiting = [...this.#waiting];
    this.#waiting.clear();
    for (const s of waiting) {
      if (this.#blocked) { this.#waiting.add(s); continue; }
      s.flush();
    }
  };

  readonly #onData = (chunk: Buffer): void => {
    if (this.#closed) return;
    this.#lastRx = this.#now();
    this.bytesRx += chunk.length;
    try {
      this.#decoder.push(chunk, this.#onFrame);
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
      return;
    }
  };

  /**
   * Runs once the link's current read has been handled in full. An encrypted link hands over a
   * read as several chunks (one per record piece), so delivering per chunk cut one read's frames
   * into several socket writes; now a session gets one write per read.
   */
  readonly #deliverTouched = (): void => {
    const touched = this.#touched;
    this.#touched = [];
    for (const s of touched) s.deliver();
  };

  readonly #onFrame = (f: Frame): void => {
    if (this.#closed) return;
    switch (f.type) {
      case FrameType.DAT: {
        const s = this.sessions.get(f.session);
        // The first session touched in this read schedules the delivery of all of them.
        if (s?.onData(f.data) && this.#touched.push(s) === 1) process.nextTick(this.#deliverTouched);
        return;
      }
      case FrameType.CLS:
        this.sessions.get(f.session)?.onCls();
        return;
      case FrameType.OPN:
        this.#onOpn(f.session, f.port, f.address);
        return;
      case FrameType.CMD:
        this.#onCmd(f);
        return;
    }
  };

  #onOpn(id: number, port: number, address: Uint8Array): void {
    if (id === 0) throw new SessionStateError('OPN with session id 0');
    if (this.sessions.has(id)) throw new SessionStateError(`OPN for session ${id} which is open`);
    // Refused without a session object: CLS at once (after our backpressure check like any frame).
    if (!this.#init.onOpen || this.sessions.size >= this.#maxSessions) {
      this.#write(encodeCls(id));
      this.#init.onRefuse?.(this.#init.onOpen ? 'session_cap' : 'not_accepted');
      return;
    }
    const s = this.#newSession(id);
    this.#init.onOpen(s, port, bytesToIp(address));
  }

  #onCmd(f: CmdFrame): void {
    const ext = this.#features;
    switch (f.command) {
      case Command.PING:
        if (ext & Feature.PONG && f.params.length > 0) this.command(f.id, Command.PONG, f.params);
        return;
      case Command.PONG:
        if (f.params.length === 8) {
          this.rttMs = Math.max(0, this.#now() - f.params.readDoubleBE(0));
          this.#init.onRtt?.(this.rttMs);
        }
        return;
      case Command.HELLO: {
        if (this.#peerHello || this.offered === 0) return;
        this.#peerHello = decodeHello(f.params);
        if (!this.#helloSent) this.#sendHello();
        this.#features = this.offered & this.#peerHello.features;
        // The peer sent its HELLO before any BIG frame: every frame after this one may be BIG. A
        // peer that offers BIG also opens link records of a 64 KiB read with its headers, so an
        // encrypted link below us may seal one record per read instead of two (docs/link.md).
        if (this.#features & Feature.BIG) {
          this.#decoder.allowBig = true;
          (this.link as Partial<LargeRecords>).useLargeRecords?.();
        }
        this.#init.onHello?.(this.#features);
        return;
      }
      case Command.CREDIT:
        if (ext & Feature.FLOW) this.sessions.get(f.id)?.onCredit(decodeCredit(f.params));
        return;
      case Command.FIN:
        if (ext & Feature.FLOW) this.sessions.get(f.id)?.onFin();
        return;
      default:
        this.#init.onCommand?.(f);
    }
  }

  #tick(deadAfterMs: number): void {
    if (this.#closed) return;
    if (deadAfterMs > 0 && this.#now() - this.#lastRx > deadAfterMs) {
      this.destroy(new LinkDeadError(deadAfterMs));
      return;
    }
    // A peer that does not read gets no more PINGs either: they would only pile up in #ctl.
    if (this.#readStopped) return;
    if (this.#features & Feature.PONG) {
      const p = Buffer.allocUnsafe(8);
      p.writeDoubleBE(this.#now(), 0);
      this.command(0, Command.PING, p);
    } else {
      this.command(0, Command.PING);
    }
  }

  // ---- SessionHost ----
  sendData(session: number, data: Buffer): void {
    // The frames go to the link as header, payload view, header, ... written while corked: one
    // writev on a TCP link, one batch for the encrypted link (whose records gather their bytes
    // anyway), without copying the payload into frames (a copy would also be a new 64 KiB
    // ArrayBuffer per read: GC pressure).
    const link = this.link;
    // BIG frames (negotiated): a 64 KiB read is one frame, not eight.
    const big = (this.#features & Feature.BIG) !== 0 && data.length > 0;
    const size = big ? BIG_HEADER_SIZE : HEADER_SIZE; // two ternaries, not a pair array per write on the data path
    const max = big ? MAX_BIG_PAYLOAD : MAX_DAT_PAYLOAD;
    const headers = encodeDatHeaders(session, data.length, big);
    link.cork();
    this.#opnFirst(session);
    let ok = true;
    for (let off = 0, i = 0; off < data.length || i === 0; off += max, i++) {
      link.write(headers.subarray(i * size, (i + 1) * size));
      ok = link.write(data.subarray(off, off + max));
    }
    link.uncork();
    this.bytesTx += data.length + headers.length;
    if (!ok) {
      this.#blocked = true;
      this.#checkQueued();
    }
  }
  sendFin(session: number): void {
    this.#opnFirst(session);
    this.#write(encodeCmd(session, Command.FIN));
  }
  sendCls(session: number): void {
    if (this.#closed) return;
    this.#opnFirst(session);
    this.#write(encodeCls(session));
  }
  sendCredit(session: number, n: number): void {
    this.#opnFirst(session);
    this.#write(encodeCmd(session, Command.CREDIT, encodeCredit(n)));
  }
  waitDrain(s: MuxSession): void {
    this.#waiting.add(s);
  }
  setCongested(s: MuxSession, congested: boolean): void {
    if (congested) this.#congested.add(s);
    else this.#congested.delete(s);
    this.#updateReading();
  }
  forget(session: number): void {
    const s = this.sessions.get(session);
    if (s) {
      this.#waiting.delete(s);
      this.#congested.delete(s);
    }
    this.sessions.delete(session);
  }
}
