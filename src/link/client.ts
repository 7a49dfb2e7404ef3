import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { backoffDelay } from '../util/backoff.ts';
import { connected } from '../util/connect.ts';
import { HandshakeTimeoutError, LinkError, ServerAuthError, SessionLostError } from './errors.ts';
import {
  checkResumeReply, clientNew, KIND_UNKNOWN, NEW_REPLY_SIZE, RESUME_CHALLENGE_SIZE, RESUME_REPLY_SIZE,
  resumeHello, resumeProof, trafficKeys,
} from './handshake.ts';
import { readExact } from './read-exact.ts';
import { DEFAULT_LINK_OPTIONS, LinkStream, type LinkOptions } from './stream.ts';


export interface ConnectOptions extends Partial<LinkOptions> {
  host: string;
  port: number;
  /** The gateway's pinned static public key (32 raw bytes). */
  serverKey: Buffer;
  /** Told to the server inside the sealed first message (e.g. agent or client). */
  purpose?: number;
  /** How long to keep trying to resume after the connection is lost. */
  resumeForMs?: number;
  handshakeTimeoutMs?: number;
  /** Opens the TCP connection (tests put a fault-injecting proxy here). */
  dial?: () => Socket;
}

function dialer(o: ConnectOptions): () => Promise<Socket> {
  return () => connected(o.dial ? o.dial() : connect({ host: o.host, port: o.port, noDelay: true }));
}

/**
 * Connects a link session: the NEW handshake on a first TCP connection, then, whenever that
 * connection is lost, resumes on a new one (backoff 20 ms → 1 s) for up to `resumeForMs`.
 * Resolves with the stream once the gateway has proved it holds the pinned key.
 */
export async function connectLink(o: ConnectOptions): Promise<LinkStream> {
  const opts: LinkOptions = { ...DEFAULT_LINK_OPTIONS, ...o };
  const timeout = o.handshakeTimeoutMs ?? 10_000;
  const open = dialer(o);
  const socket = await open();
  const hs = clientNew(o.serverKey, o.purpose ?? 0);
  socket.write(hs.message);
  let reply;
  try {
    reply = await readExact(socket, NEW_REPLY_SIZE, timeout);
  } catch (e) {
    socket.destroy();
    const why = e instanceof HandshakeTimeoutError ? 'no answer in time' : 'closed before answering';
    throw new ServerAuthError(`${why} (${(e as Error).message}); is the gateway up, is the pinned gateway key right, and is this a DoorKeeper link port?`);
  }
  let secrets;
  try {
    secrets = hs.finish(reply.msg);
  } catch (e) {
    socket.destroy();
    throw e;
  }
  const stream = new LinkStream(secrets, opts);
  const keys = trafficKeys(secrets.master, secrets.salt, 0);
  stream.attach(socket, { send: keys.c2s, recv: keys.s2c }, 0, reply.rest);
  const resumeForMs = o.resumeForMs ?? 60_000;
  // One resume loop at a time; a detach that happens while one is finishing (even inside
  // attach()) starts another, so no loss of connection is ever left unanswered.
  let resuming = false;
  const ensureResuming = (): void => {
    if (resuming || stream.destroyed || stream.attached) return;
    resuming = true;
    void resumeLoop(stream, open, timeout, resumeForMs).finally(() => {
      resuming = false;
      ensureResuming();
    });
  };
  stream.on('detached', ensureResuming);
  return stream;
}

const UNKNOWN_TO_LOSE = 3;

async function resumeLoop(stream: LinkStream, open: () => Promise<Socket>, timeout: number, resumeForMs: number): Promise<void> {
  const deadline = Date.now() + resumeForMs;
  // "No such session" cannot be authenticated (the server has no key for a session it lacks), so
  // one answer may be a corrupted or forged message: only three in a row mean the session is gone.
  let unknown = 0;
  for (let attempt = 0; !stream.destroyed; attempt++) {
    if (Date.now() > deadline) {
      stream.destroy(new SessionLostError(`could not reach the gateway for ${resumeForMs} ms`));
      return;
    }
    if (attempt > 0) await new Promise((r) => setTimeout(r, backoffDelay(attempt - 1, 20, 1000)));
    if (stream.destroyed) return;
    let socket: Socket | null = null;
    try {
      socket = await open();
      const s = stream.secrets;
      const cn = randomBytes(16);
      socket.write(resumeHello(s.sessionId, cn));
      const ch = await readExact(socket, 1, timeout);
      if (ch.msg[0] === KIND_UNKNOWN) {
        socket.destroy();
        if (++unknown >= UNKNOWN_TO_LOSE) {
          stream.destroy(new SessionLostError('the gateway no longer has this session (it expired while the link was down)'));
          return;
        }
        continue;
      }
      unknown = 0;
      const rest = await readExact(socket, RESUME_CHALLENGE_SIZE - 1, timeout, ch.rest);
      const sn = rest.msg;
      const epoch = stream.epoch + 1;
      stream.epoch = epoch;
      socket.write(resumeProof(s, cn, sn, epoch, stream.received));
      const r = await readExact(socket, RESUME_REPLY_SIZE, timeout, rest.rest);
      const peerReceived = checkResumeReply(s, cn, sn, epoch, r.msg);
      if (peerReceived === null) throw new LinkError('DK_LINK_HANDSHAKE', 'resume answer not authentic');
      const keys = trafficKeys(s.master, Buffer.concat([cn, sn]), epoch);
      if (stream.destroyed) { socket.destroy(); return; }
      stream.attach(socket, { send: keys.c2s, recv: keys.s2c }, peerReceived, r.rest);
      return;
    } catch {
      socket?.destroy();
    }
  }
}
