import { RecvWindow, SendCredit } from './window.ts';

/** What a session needs from its mux (kept small so the session can be tested alone). */
export interface SessionHost {
  /** Whether the link can take more bytes now. */
  readonly writable: boolean;
  sendData(session: number, data: Buffer): void;
  sendFin(session: number): void;
  sendCls(session: number): void;
  sendCredit(session: number, n: number): void;
  /** Ask to be called back (session.flush()) when the link drains. */
  waitDrain(s: MuxSession): void;
  /** Legacy mode only: pause or resume reading the link for this session's sake. */
  setCongested(s: MuxSession, congested: boolean): void;
  forget(session: number): void;
}

export type CloseReason = 'done' | 'local' | 'remote' | 'link';

/** The local end of a session: where inbound bytes go (a socket, in practice). */
export interface SessionSink {
  data(buf: Buffer): void;
  /** Several buffers at once (the DAT frames of one link read), to be written without joining them. */
  dataMany?(bufs: Buffer[], bytes: number): void;
  /** The peer half-closed: no more data will arrive. */
  end(): void;
  /** The session is over; `reason` says who ended it. Called exactly once. */
  close(reason: CloseReason): void;
}

const MAX_SEND_BATCH = 256 * 1024;
/** Bytes buffered before a sink is attached, in legacy mode, before the link is paused. */
const LEGACY_INBOX_LIMIT = 256 * 1024;

/**
 * One multiplexed session. In flow mode (both sides sent HELLO with FLOW) it never sends past its
 * credit and half-closes with FIN; in legacy mode (a seed-only peer) it relies on pausing the whole
 * link for backpressure and ends with CLS, as the seed does.
 */
export class MuxSession {
  readonly id: number;
  readonly flow: boolean;
  readonly #host: SessionHost;
  readonly #recv: RecvWindow | null;
  readonly #credit: SendCredit | null;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #finQueued = false;
  #localEnded = false;
  #remoteEnded = false;
  #closed = false;
  #sink: SessionSink | null = null;
  #inbox: Buffer[] = [];
  #inboxBytes = 0;
  #inboxEnded = false;
  #rx: Buffer[] = [];
  #rxBytes = 0;
  #onDrain: (() => void) | null = null;
  #congested = false;
  bytesIn = 0;
  bytesOut = 0;

  constructor(id: number, host: SessionHost, flow: boolean, recvWindow: number, sendWindow: number, recvWindowMax = recvWindow) {
    this.id = id;
    this.#host = host;
    this.flow = flow;
    this.#recv = flow ? new RecvWindow(recvWindow, recvWindowMax) : null;
    this.#credit = flow ? new SendCredit(sendWindow) : null;
  }

  get closed(): boolean {
    return this.#closed;
  }
  get pendingBytes(): number {
    return this.#pendingBytes;
  }
  get inboxBytes(): number {
    return this.#inboxBytes;
  }

  /** Attaches the local end; data that arrived before is delivered now. */
  attach(sink: SessionSink, onDrain: () => void): void {
    this.#sink = sink;
    this.#onDrain = onDrain;
    const inbox = this.#inbox;
    this.#inbox = [];
    this.#inboxBytes = 0;
    for (const b of inbox) sink.data(b);
    if (this.#inboxEnded) sink.end();
    if (!this.flow) this.#setCongested(false);
  }

  /** Queues bytes for the peer. Returns false when the caller should pause its source until onDrain. */
  write(buf: Buffer): boolean {
    if (this.#closed || this.#finQueued) return false;
    this.#queue(buf);
    this.flush();
    return this.#pendingBytes === 0;
  }

  /**
   * Queues several buffers for the peer and sends them as one: the frames a relay received in one
   * link read go out in as few DAT frames and link records as credit allows, not one each.
   */
  writeMany(bufs: Buffer[]): boolean {
    if (this.#closed || this.#finQueued) return false;
    for (const b of bufs) this.#queue(b);
    this.flush();
    return this.#pendingBytes === 0;
  }

  #queue(buf: Buffer): void {
    if (buf.length === 0) return;
    this.#pending.push(buf);
    this.#pendingBytes += buf.length;
  }

  /** Half-close: no more data from this side (FIN in flow mode, CLS in legacy mode), after pending bytes. */
  end(): void {
    if (this.#closed || this.#finQueued) return;
    this.#finQueued = true;
    this.flush();
  }

  /** Abort: drop pending bytes and send CLS. */
  close(): void {
    if (this.#closed) return;
    this.#host.sendCls(this.id);
    this.#finish('local');
  }

  /** Sends what credit and the link allow. Called on write, on CREDIT and on link drain. */
  flush(): void {
    while (this.#pendingBytes > 0 && !this.#closed) {
      if (!this.#host.writable) {
        this.#host.waitDrain(this);
        return;
      }
      const allowance = this.#credit ? Math.min(this.#credit.available, MAX_SEND_BATCH) : MAX_SEND_BATCH;
      if (allowance <= 0) return; // CREDIT will call flush()
      const out = this.#take(allowance);
      this.#credit?.take(out.length);
      this.bytesOut += out.length;
      this.#host.sendData(this.id, out);
    }
    if (this.#closed) return;
    if (this.#finQueued && !this.#localEnded) {
      this.#localEnded = true;
      if (!this.flow) {
        this.#host.sendCls(this.id);
        this.#finish('done');
        return;
      }
      this.#host.sendFin(this.id);
      if (this.#remoteEnded) this.#finish('done');
      return;
    }
    if (!this.#finQueued) this.#onDrain?.();
  }

  #take(max: number): Buffer {
    const head = this.#pending[0]!;
    if (head.length <= max && this.#pending.length === 1) {
      this.#pending.length = 0;
      this.#pendingBytes = 0;
      return head;
    }
    const parts: Buffer[] = [];
    let n = 0;
    while (n < max && this.#pending.length > 0) {
      const b = this.#pending[0]!;
      const room = max - n;
      if (b.length <= room) {
        parts.push(b);
        n += b.length;
        this.#pending.shift();
      } else {
        parts.push(b.subarray(0, room));
        this.#pending[0] = b.subarray(room);
        n += room;
      }
    }
    this.#pendingBytes -= n;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
  }

  /** The sink reports how many bytes it has consumed in total; credit flows back from this. */
  consumed(total: number): void {
    if (this.#closed || this.#remoteEnded) return;
    const grant = this.#recv?.consumed(total) ?? 0;
    if (grant > 0) this.#host.sendCredit(this.id, grant);
  }

  /** Legacy mode: the sink's buffer is over its mark (true) or drained (false). */
  congested(yes: boolean): void {
    if (!this.flow) this.#setCongested(yes);
  }

  #setCongested(yes: boolean): void {
    if (this.#congested === yes) return;
    this.#congested = yes;
    this.#host.setCongested(this, yes);
  }

  // ---- called by the mux on inbound frames ----

  /**
   * Accounts for one DAT frame at once (a credit overrun must fail here), but holds its bytes until
   * deliver(): the mux calls that after each link read, so the frames of one read reach the local
   * socket as one write instead of one write per 8 KiB frame.
   */
  onData(buf: Buffer): boolean {
    if (this.#closed || this.#remoteEnded) return false; // late data after our CLS: drop
    this.#recv?.receive(this.id, buf.length);
    this.bytesIn += buf.length;
    this.#rx.push(buf);
    this.#rxBytes += buf.length;
    return this.#rx.length === 1;
  }

  /** Hands the bytes held by onData() to the sink (or the inbox before one is attached). */
  deliver(): void {
    if (this.#rx.length === 0) return;
    if (this.#closed) {
      // Closed by us or by a lost link between the frame and its delivery: there is no sink.
      this.#rx = [];
      this.#rxBytes = 0;
      return;
    }
    const rx = this.#rx;
    const bytes = this.#rxBytes;
    this.#rx = [];
    this.#rxBytes = 0;
    if (this.#sink?.dataMany && rx.length > 1) {
      this.#sink.dataMany(rx, bytes);
      return;
    }
    const buf = rx.length === 1 ? rx[0]! : Buffer.concat(rx, bytes);
    if (this.#sink) {
      this.#sink.data(buf);
      return;
    }
    this.#inbox.push(buf);
    this.#inboxBytes += buf.length;
    if (!this.flow && this.#inboxBytes > LEGACY_INBOX_LIMIT) this.#setCongested(true);
  }

  onCredit(n: number): void {
    if (this.#closed || !this.#credit) return;
    this.#credit.grant(n);
    this.flush();
  }

  onFin(): void {
    if (this.#closed || this.#remoteEnded) return;
    this.deliver();
    this.#remoteEnded = true;
    if (this.#sink) this.#sink.end();
    else this.#inboxEnded = true;
    if (this.#localEnded) this.#finish('done');
  }

  onCls(): void {
    if (this.#closed) return;
    this.deliver();
    if (!this.#remoteEnded) {
      this.#remoteEnded = true;
      if (this.#sink) this.#sink.end();
      else this.#inboxEnded = true;
    }
    this.#finish('remote');
  }

  onLinkDown(): void {
    this.#finish('link');
  }

  #finish(reason: CloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = [];
    this.#pendingBytes = 0;
    if (this.#congested) this.#setCongested(false);
    this.#host.forget(this.id);
    this.#sink?.close(reason);
  }
}
