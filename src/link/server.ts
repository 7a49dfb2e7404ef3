import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { realClock, type Clock, type LinkTimer } from './clock.ts';
import type { KeyPair } from './crypto.ts';
import { LinkProtocolError, ResumeError, SessionLostError, TooManySessionsError } from './errors.ts';
import {
  decoyNewReply, KIND_NEW, KIND_RESUME, MAGIC, NEW_SIZE, RESUME_PROOF_SIZE, RESUME_SIZE, serverNew, trafficKeys,
} from './handshake.ts';
import { readExact } from './read-exact.ts';
import { ResumeResponder } from './resume.ts';
import { DEFAULT_LINK_OPTIONS, LinkStream, type LinkOptions } from './stream.ts';

/** T: the transport handed to handle() — a net.Socket from the gateway's listener, or any Duplex byte pipe. */
export interface LinkServerOptions<T extends Duplex = Socket> extends Partial<LinkOptions> {
  key: KeyPair;
  /** A session whose connection is gone is kept this long for a resume, then forgotten. */
  detachTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  /** Time for the sessions, their timers and the detach timeout (tests: a fake clock). */
  clock?: Clock;
  /** At most this many sessions (live or detached); new ones are refused beyond it. */
  maxSessions?: number;
  /** A NEW handshake completed on `socket`; the stream is attached to it. */
  onStream: (stream: LinkStream, purpose: number, socket: T) => void;
  /** A handshake failed: a LinkError with its code (a failed resume is a ResumeError with its reason). */
  onError?: (err: Error, remote: string) => void;
  /**
   * A resume failed, with its reason: every ResumeError (those that are handshake failures are also
   * given to onError; "no such session" and "session ended" are answered and are not).
   */
  onResumeFailed?: (err: ResumeError, remote: string) => void;
}

function remoteOf(socket: Duplex & { remoteAddress?: string; remotePort?: number }): string {
  return `${socket.remoteAddress}:${socket.remotePort}`;
}

interface Held {
  stream: LinkStream;
  /** Runs while the session is detached (or complete): made once per session, restarted on each detach. */
  expiry: LinkTimer;
  /** Both directions ended and were acknowledged as far as this side knows. */
  completed: boolean;
}

/**
 * The server side of the link: runs NEW and RESUME handshakes on sockets handed to it (the
 * gateway detects the "DKL1" magic on its serv_port), keeps sessions while detached, and forgets
 * them after `detachTimeoutMs` — their streams then fail with SessionLostError.
 */
export class LinkServer<T extends Duplex = Socket> {
  readonly opts: LinkOptions;
  readonly #o: LinkServerOptions<T>;
  readonly #clock: Clock;
  readonly sessions = new Map<string, Held>();

  constructor(o: LinkServerOptions<T>) {
    this.#o = o;
    this.#clock = o.clock ?? realClock;
    this.opts = { ...DEFAULT_LINK_OPTIONS, ...o };
  }

  /**
   * Handles a connection whose first bytes (`head`, at least the 4-byte magic) were already read.
   * Settles when the handshake is over, whatever its outcome: a failed one has destroyed the
   * socket and reported the error.
   */
  handle(socket: T, head: Buffer): Promise<void> {
    socket.on('error', () => undefined);
    return this.#handle(socket, head).catch((err: Error) => {
      if (!socket.writableEnded) socket.destroy(); // a decoy reply is on its way; its own timer ends it
      this.#o.onError?.(err, remoteOf(socket));
    });
  }

  async #handle(socket: T, head: Buffer): Promise<void> {
    const timeout = this.#o.handshakeTimeoutMs ?? 10_000;
    const first = await readExact(socket, 5, timeout, head);
    if (!first.msg.subarray(0, 4).equals(MAGIC)) throw new LinkProtocolError('not a link handshake');
    const kind = first.msg[4];
    if (kind === KIND_NEW) {
      const m = await readExact(socket, NEW_SIZE - 5, timeout, first.rest);
      const max = this.#o.maxSessions ?? 100_000;
      if (this.sessions.size >= max) throw new TooManySessionsError(max);
      let opened;
      try {
        opened = serverNew(this.#o.key, Buffer.concat([first.msg, m.msg]));
      } catch (e) {
        // Pinned to another key (or garbage): answer with a decoy so a client with the wrong key
        // can tell "wrong key" from "gateway busy" (handshake.ts, decoyNewReply), then close.
        socket.end(decoyNewReply());
        setTimeout(() => socket.destroy(), 2000).unref();
        throw e;
      }
      const { purpose, reply, secrets } = opened;
      socket.write(reply);
      const stream = new LinkStream(secrets, this.opts, this.#clock);
      const id = secrets.sessionId.toString('hex');
      const held: Held = { stream, expiry: this.#clock.timer(() => this.#expire(id, held)), completed: false };
      this.sessions.set(id, held);
      stream.on('detached', () => this.#startExpiry(id, held));
      stream.on('attached', () => held.expiry.stop());
      // A completed session is kept for the detach timeout: the peer may not have seen our last
      // ACK, and its resume must then learn that everything arrived instead of "session lost".
      stream.on('complete', () => { held.completed = true; this.#startExpiry(id, held); });
      stream.on('close', () => { if (!held.completed) this.#forget(id, held); });
      const k = trafficKeys(secrets.master, secrets.salt, 0);
      stream.attach(socket, { send: k.s2c, recv: k.c2s }, 0, m.rest);
      this.#o.onStream(stream, purpose, socket);
      return;
    }
    if (kind !== KIND_RESUME) throw new LinkProtocolError(`unknown handshake kind ${kind}`);
    const m = await readExact(socket, RESUME_SIZE - 5, timeout, first.rest);
    const resume = new ResumeResponder(Buffer.concat([first.msg, m.msg]));
    const held = this.sessions.get(resume.sessionId.toString('hex'));
    if (!held) {
      socket.end(ResumeResponder.unknownSession());
      this.#o.onResumeFailed?.(new ResumeError('unknown-session', 'no such session (expired, or never existed)'), remoteOf(socket));
      return;
    }
    const stream = held.stream;
    try {
      socket.write(resume.challenge());
      const p = await readExact(socket, RESUME_PROOF_SIZE, timeout, m.rest);
      // A replayed or forged resume fails here (sn is fresh) and a stale epoch is refused:
      // either way the live connection is not touched.
      resume.check(stream.session, stream.secrets, p.msg);
      if (held.completed) {
        socket.end(resume.accept(stream.session, stream.secrets).reply);
        return;
      }
      if (stream.destroyed) {
        socket.end(ResumeResponder.unknownSession());
        this.#o.onResumeFailed?.(new ResumeError('session-ended', 'the session was destroyed while the resume ran'), remoteOf(socket));
        return;
      }
      const { reply, keys, peerReceived } = resume.accept(stream.session, stream.secrets);
      socket.write(reply);
      stream.attach(socket, keys, peerReceived, p.rest, 'linger');
    } catch (e) {
      const err = e instanceof ResumeError ? e : new ResumeError('transport', (e as Error).message);
      stream.emit('resumeFailed', err);
      this.#o.onResumeFailed?.(err, remoteOf(socket));
      throw err;
    }
  }

  #startExpiry(id: string, held: Held): void {
    if (this.sessions.get(id) === held) held.expiry.start(this.#o.detachTimeoutMs ?? 60_000);
  }

  #expire(id: string, held: Held): void {
    this.#forget(id, held);
    const ms = this.#o.detachTimeoutMs ?? 60_000;
    if (!held.completed) held.stream.destroy(new SessionLostError(`the peer did not come back within ${ms} ms`));
  }

  #forget(id: string, held: Held): void {
    held.expiry.dispose();
    if (this.sessions.get(id) === held) this.sessions.delete(id);
  }

  close(): void {
    for (const [id, held] of this.sessions) {
      this.#forget(id, held);
      held.stream.destroy();
    }
  }
}
