import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { unmapIPv4 } from './candidate.ts';
import { KeyCount } from '../util/key-count.ts';
import { rttEstimate, schedule } from './coord-schedule.ts';
import { MAX_LINE_BYTES, decodeToCoordinator, encodeLine, type Hello, type ToSide } from './coord-messages.ts';
import { LineDecoder } from './lines.ts';
import { TOKEN_BYTES } from './select.ts';

/**
 * A rendezvous-like coordinator for direct TCP (docs/p2p.md §5): plain TCP, newline-delimited
 * JSON (coord-messages.ts). Each side connects from the port it will punch from and says which
 * session it joins; the coordinator records the address and port it sees (the side's public NAT
 * mapping), measures each side's RTT with a few pings, and when both sides of a session are in,
 * sends each the other's candidates, a shared token, a role and its delay to the common start.
 * This is the lab's stand-in for the gateway's coordination; the sockets stay open until the
 * sides close them (the NAT mapping must live until the punch is over).
 */
export interface CoordinatorInit {
  readonly host: string;
  readonly port?: number;
  /** Open connections at most (each side is one). */
  readonly maxConnections?: number;
  /** Open connections from one address at most (a side is one; a NAT shared by many users has several). */
  readonly maxPerAddress?: number;
  /** Sessions waiting for their second side at most. */
  readonly maxWaiting?: number;
  /** A side must say hello within this. */
  readonly helloTimeoutMs?: number;
  /** A waiting side gives up when no peer joins within this. */
  readonly pairTimeoutMs?: number;
  /** RTT samples per side. */
  readonly pings?: number;
  readonly pingTimeoutMs?: number;
  /** A connection is closed this long after `go`, if the side has not closed it. */
  readonly lingerMs?: number;
  readonly now?: () => number;
  /** Whether a side may join `session` (the gateway admits only sessions it made); any, unless given. */
  readonly admit?: (session: string) => boolean;
}

export const COORDINATOR_DEFAULTS = {
  maxConnections: 512, maxPerAddress: 64, maxWaiting: 256, helloTimeoutMs: 5_000, pairTimeoutMs: 15_000, pings: 3, pingTimeoutMs: 2_000, lingerMs: 30_000,
} as const;

interface Side {
  readonly socket: Socket;
  readonly observed: { host: string; port: number };
  hello: Hello | undefined;
  peer: Side | undefined;
  /** The side that joined first dials as the initiator. */
  first: boolean;
  samples: number[];
  pingSentAt: number;
  rtt: number | undefined;
  timer: NodeJS.Timeout | undefined;
  done: boolean;
  /** Told once the side's hello named an admitted session (handle()). */
  admitted: (() => void) | undefined;
}

export class Coordinator {
  readonly #init: Required<Omit<CoordinatorInit, 'port' | 'admit'>> & { port: number; admit?: (session: string) => boolean };
  readonly #server: Server;
  readonly #waiting = new Map<string, Side>();
  readonly #sides = new Set<Side>();
  readonly #perAddress = new KeyCount();
  /** Pairs that got `go`, for tests and logs. */
  paired = 0;

  constructor(init: CoordinatorInit) {
    this.#init = { ...COORDINATOR_DEFAULTS, now: () => performance.now(), port: 0, ...init };
    this.#server = createServer((s) => this.#accept(s));
    this.#server.on('error', () => undefined);
  }

  async listen(): Promise<AddressInfo> {
    this.#server.listen(this.#init.port, this.#init.host);
    await once(this.#server, 'listening');
    return this.#server.address() as AddressInfo;
  }

  /** Sessions waiting for a second side. */
  get waiting(): number {
    return this.#waiting.size;
  }

  get connections(): number {
    return this.#sides.size;
  }

  async close(): Promise<void> {
    for (const side of this.#sides) side.socket.destroy();
    if (this.#server.listening) await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /**
   * Takes a connection accepted elsewhere (the gateway's serv_port, after the "DKC1" magic):
   * `rest` is what arrived after the magic; `admitted` is called once its hello names a session
   * `admit` lets in (until then the caller counts it as unauthenticated).
   */
  handle(socket: Socket, rest: Buffer, admitted?: () => void): void {
    if (rest.length > 0) socket.unshift(rest);
    this.#accept(socket, admitted);
    socket.resume();
  }

  #accept(socket: Socket, admitted?: () => void): void {
    socket.on('error', () => undefined);
    if (this.#sides.size >= this.#init.maxConnections || socket.remoteAddress === undefined || socket.remotePort === undefined) {
      socket.destroy();
      return;
    }
    const address = unmapIPv4(socket.remoteAddress);
    if (!this.#perAddress.take(address, this.#init.maxPerAddress)) {
      socket.destroy();
      return;
    }
    socket.once('close', () => this.#perAddress.give(address));
    socket.setNoDelay(true);
    const side: Side = {
      socket, observed: { host: unmapIPv4(socket.remoteAddress), port: socket.remotePort },
      hello: undefined, peer: undefined, first: false, samples: [], pingSentAt: 0, rtt: undefined, timer: undefined, done: false, admitted,
    };
    this.#sides.add(side);
    this.#arm(side, this.#init.helloTimeoutMs, 'no hello in time');
    const lines = new LineDecoder(MAX_LINE_BYTES);
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const line of lines.push(chunk)) this.#onLine(side, line);
      } catch (err) {
        this.#fail(side, (err as Error).message);
      }
    });
    socket.on('close', () => this.#gone(side));
  }

  #arm(side: Side, ms: number, why: string): void {
    clearTimeout(side.timer);
    side.timer = setTimeout(() => this.#fail(side, why), ms);
    side.timer.unref();
  }

  #send(side: Side, msg: ToSide): void {
    if (!side.socket.destroyed) side.socket.write(encodeLine(msg));
  }

  /** Tells the side why, then closes it; its peer, if any and not yet sent `go`, goes too. */
  #fail(side: Side, message: string): void {
    if (side.done) return;
    side.done = true;
    clearTimeout(side.timer);
    this.#send(side, { t: 'error', message: message.slice(0, 500) });
    side.socket.end();
    side.socket.destroySoon();
    const t = setTimeout(() => side.socket.destroy(), 1_000);
    t.unref();
    this.#unlink(side);
  }

  #unlink(side: Side): void {
    if (side.hello && this.#waiting.get(side.hello.session) === side) this.#waiting.delete(side.hello.session);
    const peer = side.peer;
    side.peer = undefined;
    if (peer && !peer.done) {
      peer.peer = undefined;
      this.#fail(peer, 'the peer left before the punch started');
    }
  }

  #gone(side: Side): void {
    clearTimeout(side.timer);
    this.#sides.delete(side);
    if (!side.done) {
      side.done = true;
      this.#unlink(side);
    }
  }

  #onLine(side: Side, line: string): void {
    if (side.done) return;
    const msg = decodeToCoordinator(line);
    if (msg.t === 'hello') {
      if (side.hello) { this.#fail(side, 'hello sent twice'); return; }
      side.hello = msg;
      if (this.#init.admit && !this.#init.admit(msg.session)) { this.#fail(side, 'no such punch session'); return; }
      side.admitted?.();
      const waiting = this.#waiting.get(msg.session);
      if (waiting) {
        this.#waiting.delete(msg.session);
        waiting.peer = side;
        side.peer = waiting;
        waiting.first = true;
        // A side still pinging keeps its pong deadline; one that was only waiting for a peer stops waiting.
        if (waiting.rtt !== undefined) clearTimeout(waiting.timer);
      } else {
        if (this.#waiting.size >= this.#init.maxWaiting) { this.#fail(side, 'coordinator full: too many sessions waiting'); return; }
        this.#waiting.set(msg.session, side);
      }
      this.#ping(side);
      return;
    }
    // pong
    if (msg.n !== side.samples.length || side.pingSentAt === 0) { this.#fail(side, `unexpected pong ${msg.n}`); return; }
    side.samples.push(this.#init.now() - side.pingSentAt);
    side.pingSentAt = 0;
    if (side.samples.length < this.#init.pings) { this.#ping(side); return; }
    side.rtt = rttEstimate(side.samples);
    if (side.peer === undefined) this.#arm(side, this.#init.pairTimeoutMs, `no peer joined session ${side.hello?.session ?? ''} in time`);
    else clearTimeout(side.timer);
    this.#maybeGo(side);
  }

  #ping(side: Side): void {
    side.pingSentAt = this.#init.now();
    this.#send(side, { t: 'ping', n: side.samples.length });
    this.#arm(side, this.#init.pingTimeoutMs, 'no pong in time');
  }

  #maybeGo(side: Side): void {
    const peer = side.peer;
    if (!peer || side.rtt === undefined || peer.rtt === undefined || !side.hello || !peer.hello) return;
    const [a, b] = side.first ? [side, peer] : [peer, side];
    const plan = schedule({ rttA: a.rtt!, rttB: b.rtt! });
    const token = randomBytes(TOKEN_BYTES).toString('hex');
    const candidatesOf = (s: Side): { kind: 'public' | 'lan'; host: string; port: number }[] =>
      [{ kind: 'public', ...s.observed }, ...s.hello!.lan.map((c) => ({ kind: 'lan' as const, ...c }))];
    for (const [me, other, role, delayMs] of [[a, b, 'initiator', plan.delayA], [b, a, 'responder', plan.delayB]] as const) {
      this.#send(me, { t: 'go', role, token, observed: me.observed, peer: candidatesOf(other), delayMs });
      me.done = true;
      me.peer = undefined;
      // After `go` the connection only keeps the NAT mapping alive; the linger timer ends it.
      clearTimeout(me.timer);
      me.timer = setTimeout(() => me.socket.destroy(), this.#init.lingerMs);
      me.timer.unref();
    }
    this.paired++;
  }
}
