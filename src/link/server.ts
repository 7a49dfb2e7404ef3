import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { KeyPair } from './crypto.ts';
import { SessionLostError } from './errors.ts';
import {
  checkResumeProof, KIND_NEW, KIND_RESUME, KIND_UNKNOWN, MAGIC, NEW_SIZE, RESUME_PROOF_SIZE, RESUME_SIZE, resumeReply,
  decoyNewReply, serverNew, trafficKeys,
} from './handshake.ts';
import { readExact } from './read-exact.ts';
import { DEFAULT_LINK_OPTIONS, LinkStream, type LinkOptions } from './stream.ts';

export interface LinkServerOptions extends Partial<LinkOptions> {
  key: KeyPair;
  /** A session whose connection is gone is kept this long for a resume, then forgotten. */
  detachTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  /** At most this many sessions (live or detached); new ones are refused beyond it. */
  maxSessions?: number;
  /** A NEW handshake completed on `socket`; the stream is attached to it. */
  onStream: (stream: LinkStream, purpose: number, socket: Socket) => void;
  onError?: (err: Error, remote: string) => void;
}

interface Held {
  stream: LinkStream;
  expiry: NodeJS.Timeout | null;
  /** Both directions ended and were acknowledged as far as this side knows. */
  completed: boolean;
}

/**
 * The server side of the link: runs NEW and RESUME handshakes on sockets handed to it (the
 * gateway detects the "DKL1" magic on its serv_port), keeps sessions while detached, and forgets
 * them after `detachTimeoutMs` — their streams then fail with SessionLostError.
 */
export class LinkServer {
  readonly opts: LinkOptions;
  readonly #o: LinkServerOptions;
  readonly sessions = new Map<string, Held>();

  constructor(o: LinkServerOptions) {
    this.#o = o;
    this.opts = { ...DEFAULT_LINK_OPTIONS, ...o };
  }

  /**
   * Handles a connection whose first bytes (`head`, at least the 4-byte magic) were already read.
   * Settles when the handshake is over, whatever its outcome: a failed one has destroyed the
   * socket and reported the error.
   */
  handle(socket: Socket, head: Buffer): Promise<void> {
    socket.on('error', () => undefined);
    return this.#handle(socket, head).catch((err: Error) => {
      if (!socket.writableEnded) socket.destroy(); // a decoy reply is on its way; its own timer ends it
      this.#o.onError?.(err, `${socket.remoteAddress}:${socket.remotePort}`);
    });
  }

  async #handle(socket: Socket, head: Buffer): Promise<void> {
    const timeout = this.#o.handshakeTimeoutMs ?? 10_000;
    const first = await readExact(socket, 5, timeout, head);
    if (!first.msg.subarray(0, 4).equals(MAGIC)) throw new Error('not a link handshake');
    const kind = first.msg[4];
    if (kind === KIND_NEW) {
      const m = await readExact(socket, NEW_SIZE - 5, timeout, first.rest);
      if (this.sessions.size >= (this.#o.maxSessions ?? 100_000)) throw new Error('too many link sessions');
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
      const stream = new LinkStream(secrets, this.opts);
      const id = secrets.sessionId.toString('hex');
      const held: Held = { stream, expiry: null, completed: false };
      this.sessions.set(id, held);
      stream.on('detached', () => this.#startExpiry(id, held));
      stream.on('attached', () => { if (held.expiry) clearTimeout(held.expiry); held.expiry = null; });
      // A completed session is kept for the detach timeout: the peer may not have seen our last
      // ACK, and its resume must then learn that everything arrived instead of "session lost".
      stream.on('complete', () => { held.completed = true; this.#startExpiry(id, held); });
      stream.on('close', () => { if (!held.completed) this.#forget(id, held); });
      const k = trafficKeys(secrets.master, secrets.salt, 0);
      stream.attach(socket, { send: k.s2c, recv: k.c2s }, 0, m.rest);
      this.#o.onStream(stream, purpose, socket);
      return;
    }
    if (kind !== KIND_RESUME) throw new Error(`unknown handshake kind ${kind}`);
    const m = await readExact(socket, RESUME_SIZE - 5, timeout, first.rest);
    const sid = m.msg.subarray(0, 16);
    const cn = m.msg.subarray(16, 32);
    const held = this.sessions.get(sid.toString('hex'));
    if (!held) {
      socket.end(Buffer.from([KIND_UNKNOWN]));
      return;
    }
    const sn = randomBytes(16);
    socket.write(Buffer.concat([Buffer.from([KIND_RESUME]), sn]));
    const p = await readExact(socket, RESUME_PROOF_SIZE, timeout, m.rest);
    const s = held.stream.secrets;
    const proof = checkResumeProof(s, cn, sn, p.msg);
    // A replayed or forged resume fails here (sn is fresh) and a stale epoch is refused:
    // either way the live connection is not touched.
    if (!proof) throw new Error('resume proof not authentic');
    if (proof.epoch <= held.stream.epoch) throw new Error(`stale resume epoch ${proof.epoch} <= ${held.stream.epoch}`);
    if (held.completed) {
      held.stream.epoch = proof.epoch;
      socket.end(resumeReply(s, cn, sn, proof.epoch, held.stream.received));
      return;
    }
    if (held.stream.destroyed) {
      socket.end(Buffer.from([KIND_UNKNOWN]));
      return;
    }
    held.stream.epoch = proof.epoch;
    socket.write(resumeReply(s, cn, sn, proof.epoch, held.stream.received));
    const k = trafficKeys(s.master, Buffer.concat([cn, sn]), proof.epoch);
    held.stream.attach(socket, { send: k.s2c, recv: k.c2s }, proof.recv, p.rest);
  }

  #startExpiry(id: string, held: Held): void {
    if (held.expiry) clearTimeout(held.expiry);
    const ms = this.#o.detachTimeoutMs ?? 60_000;
    held.expiry = setTimeout(() => {
      this.#forget(id, held);
      if (!held.completed) held.stream.destroy(new SessionLostError(`the peer did not come back within ${ms} ms`));
    }, ms);
    held.expiry.unref();
  }

  #forget(id: string, held: Held): void {
    if (held.expiry) clearTimeout(held.expiry);
    held.expiry = null;
    if (this.sessions.get(id) === held) this.sessions.delete(id);
  }

  close(): void {
    for (const [id, held] of this.sessions) {
      this.#forget(id, held);
      held.stream.destroy();
    }
  }
}
