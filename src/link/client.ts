import { connect, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { backoffDelay } from '../util/backoff.ts';
import { connected } from '../util/connect.ts';
import { realClock, type Clock } from './clock.ts';
import { HandshakeTimeoutError, ResumeError, ServerAuthError, SessionLostError } from './errors.ts';
import { clientNew, NEW_REPLY_SIZE, RESUME_CHALLENGE_SIZE, RESUME_REPLY_SIZE, trafficKeys } from './handshake.ts';
import { readExact } from './read-exact.ts';
import { ResumeInitiator } from './resume.ts';
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
  /**
   * Opens the transport instead of a TCP connection to host:port: any Duplex byte pipe (a relayed
   * one; tests put a fault-injecting proxy or an in-memory pair here). A net.Socket still
   * connecting is waited for.
   */
  dial?: () => Duplex | Promise<Duplex>;
  /** Time for the session, its timers and the resume loop (tests: a fake clock). */
  clock?: Clock;
}

function dialer(o: ConnectOptions): () => Promise<Duplex> {
  return async () => {
    const t = o.dial ? await o.dial() : connect({ host: o.host, port: o.port, noDelay: true });
    return t instanceof Socket && t.connecting ? connected(t) : t;
  };
}

/**
 * Connects a link session: the NEW handshake on a first TCP connection, then, whenever that
 * connection is lost, resumes on a new one (backoff 20 ms → 1 s) for up to `resumeForMs`.
 * Resolves with the stream once the gateway has proved it holds the pinned key. A failed resume
 * attempt is a 'resumeFailed' event on the stream (a ResumeError with its reason), never silent.
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
  const clock = o.clock ?? realClock;
  const stream = new LinkStream(secrets, opts, clock);
  const keys = trafficKeys(secrets.master, secrets.salt, 0);
  stream.attach(socket, { send: keys.c2s, recv: keys.s2c }, 0, reply.rest);
  const resumeForMs = o.resumeForMs ?? 60_000;
  // One resume loop at a time, and none while a migration runs; a detach that happens while
  // either is finishing (even inside attach()) starts another, so no loss of connection is ever
  // left unanswered.
  const r = resumerOf(stream);
  r.kick = () => {
    if (r.running !== null || stream.destroyed || stream.attached) return;
    r.running = 'loop';
    void resumeLoop(stream, open, clock, timeout, resumeForMs).finally(() => {
      r.running = null;
      r.kick();
    });
  };
  stream.on('detached', () => r.kick());
  return stream;
}

/**
 * Who runs a RESUME exchange for a stream: its resume loop (connectLink) or a migration
 * (migrateLink); at most one at a time, since each takes the session's next epoch. `kick` starts
 * the loop if the stream is detached and nothing runs; a stream that connectLink did not make
 * has no loop, and its kick does nothing.
 */
interface Resumer {
  running: 'loop' | 'migration' | null;
  kick: () => void;
}

/** Per stream, and forgotten with it. */
const resumers = new WeakMap<LinkStream, Resumer>();

function resumerOf(stream: LinkStream): Resumer {
  let r = resumers.get(stream);
  if (!r) {
    r = { running: null, kick: () => undefined };
    resumers.set(stream, r);
  }
  return r;
}

/**
 * Moves a live client stream onto `transport` (a new relayed pipe, a direct TCP connection): a
 * RESUME exchange on it while the current transport, if any, stays attached and keeps carrying
 * data; then the stream is attached to `transport` and the old one is dropped (newer epoch wins;
 * no 'detached' event). A net.Socket still connecting is fine.
 *
 * Rejects with a ResumeError, having destroyed `transport` and left the current transport as it
 * was: 'busy' at once if the resume loop (or another migration) runs for this stream;
 * 'transport' if `transport` fails, closes or does not answer within `timeoutMs` (default
 * 10 s) in all; 'unknown-session', 'not-authentic' as for a resume; 'session-ended' if the stream
 * is destroyed meanwhile. If the current transport is lost during the migration the resume loop
 * waits for it, and starts when it ends unless the stream is attached by then.
 *
 * Why nothing is lost or duplicated although data keeps flowing on the old transport during the
 * exchange (docs/link.md, "Moving a session to another transport"):
 * - server → client: the proof carries what we received at proof time (R). The server may send
 *   more on the old transport until it accepts; we take it, and after the move the server sends
 *   again from R: LinkSession drops what we hold already by position (#onData). Meanwhile our
 *   ACKs stay at R (holdAcks): an ACK beyond R reaching the server before the proof would put R
 *   below what the server has freed, and the server would end the session ('bad-position').
 *   The server's ACKs on the old transport say at most what it had when it accepted, which its
 *   answer reports: never beyond it.
 * - client → server: the server's answer carries what it received when it accepted, after which
 *   it reads nothing more from the old transport (attach replaces it in the same turn); we send
 *   again from there, so what we wrote on the old transport after that is not lost. The server
 *   leaves the old transport for us to close ('linger'): closed at once, it would often reach us
 *   before the answer on the new one, a 'detached' in the middle of a planned move.
 * - If the server accepted but its answer never arrives, the server has let go of the old
 *   transport: it closes it (LINGER_MS in attachment.ts), our loop resumes with a newer epoch.
 */
export async function migrateLink(stream: LinkStream, transport: Duplex, o: { timeoutMs?: number } = {}): Promise<void> {
  const r = resumerOf(stream);
  if (r.running !== null) {
    transport.destroy();
    throw new ResumeError('busy', r.running === 'loop' ? 'the stream is being resumed by its resume loop' : 'another migration of this stream is running');
  }
  if (stream.destroyed || stream.session.complete) {
    transport.destroy();
    throw new ResumeError('session-ended', 'the stream has ended');
  }
  r.running = 'migration';
  const deadline = Date.now() + (o.timeoutMs ?? 10_000);
  const left = (): number => Math.max(1, deadline - Date.now());
  const live = (): void => {
    if (stream.destroyed) throw new ResumeError('session-ended', 'the stream was destroyed during the migration');
  };
  const noError = (): void => undefined;
  transport.on('error', noError);
  // A stream destroyed meanwhile ends the exchange at once (readExact sees the close).
  const onClose = (): void => { transport.destroy(); };
  stream.once('close', onClose);
  let held = false;
  try {
    const resume = new ResumeInitiator(stream.session, stream.secrets);
    transport.write(resume.hello());
    const ch = await readExact(transport, 1, left());
    live();
    if (ResumeInitiator.unknown(ch.msg[0])) throw new ResumeError('unknown-session', 'the server has no such session');
    const rest = await readExact(transport, RESUME_CHALLENGE_SIZE - 1, left(), ch.rest);
    live();
    stream.session.holdAcks();
    held = true;
    transport.write(resume.prove(Buffer.concat([ch.msg, rest.msg])));
    const reply = await readExact(transport, RESUME_REPLY_SIZE, left(), rest.rest);
    live();
    const { keys, peerReceived } = resume.finish(reply.msg);
    stream.attach(transport, keys, peerReceived, reply.rest);
    // attach() destroys a stream whose peer reports an impossible position.
    if (stream.destroyed) throw stream.errored instanceof ResumeError ? stream.errored : new ResumeError('session-ended', 'the stream ended as the migration finished');
  } catch (e) {
    transport.destroy();
    throw stream.destroyed && !(e instanceof ResumeError) ? new ResumeError('session-ended', 'the stream was destroyed during the migration') : asResumeError(e);
  } finally {
    transport.off('error', noError);
    stream.off('close', onClose);
    if (held && !stream.destroyed) stream.session.releaseAcks();
    r.running = null;
    r.kick();
  }
}

const UNKNOWN_TO_LOSE = 3;

/** Any failure of one resume attempt as a ResumeError with its reason (the transport's own errors are 'transport'). */
function asResumeError(e: unknown): ResumeError {
  if (e instanceof ResumeError) return e;
  return new ResumeError('transport', (e as Error).message);
}

/**
 * Resumes `stream` on new transports until one attaches, the session is known lost, or
 * `resumeForMs` passes. Each failed attempt is reported as 'resumeFailed' (a ResumeError).
 */
async function resumeLoop(stream: LinkStream, open: () => Promise<Duplex>, clock: Clock, timeout: number, resumeForMs: number): Promise<void> {
  const deadline = clock.now() + resumeForMs;
  // "No such session" cannot be authenticated (the server has no key for a session it lacks), so
  // one answer may be a corrupted or forged message: only three in a row mean the session is gone.
  let unknown = 0;
  for (let attempt = 0; !stream.destroyed; attempt++) {
    if (clock.now() > deadline) {
      stream.destroy(new SessionLostError(`could not reach the gateway for ${resumeForMs} ms`));
      return;
    }
    if (attempt > 0) await clock.sleep(backoffDelay(attempt - 1, 20, 1000));
    if (stream.destroyed) return;
    let socket: Duplex | null = null;
    try {
      socket = await open();
      const resume = new ResumeInitiator(stream.session, stream.secrets);
      socket.write(resume.hello());
      const ch = await readExact(socket, 1, timeout);
      if (ResumeInitiator.unknown(ch.msg[0])) {
        socket.destroy();
        const err = new ResumeError('unknown-session', `the gateway has no such session (${++unknown} of ${UNKNOWN_TO_LOSE} answers)`);
        stream.emit('resumeFailed', err);
        if (unknown >= UNKNOWN_TO_LOSE) {
          stream.destroy(new SessionLostError('the gateway no longer has this session (it expired while the link was down)'));
          return;
        }
        continue;
      }
      unknown = 0;
      const rest = await readExact(socket, RESUME_CHALLENGE_SIZE - 1, timeout, ch.rest);
      socket.write(resume.prove(Buffer.concat([ch.msg, rest.msg])));
      const r = await readExact(socket, RESUME_REPLY_SIZE, timeout, rest.rest);
      const { keys, peerReceived } = resume.finish(r.msg);
      if (stream.destroyed) {
        socket.destroy();
        stream.emit('resumeFailed', new ResumeError('session-ended', 'the stream was destroyed during the resume'));
        return;
      }
      stream.attach(socket, keys, peerReceived, r.rest);
      return;
    } catch (e) {
      socket?.destroy();
      stream.emit('resumeFailed', asResumeError(e));
    }
  }
}

/** What logResumeFailures writes to (a pino logger fits). */
export interface ResumeLog {
  warn(o: object, msg: string): void;
  debug(o: object, msg: string): void;
}

/**
 * Logs the failed resume attempts of a client stream with their reasons: the first of each
 * outage as a warning, the retries that follow (every 20 ms to 1 s) at debug level.
 */
export function logResumeFailures(stream: LinkStream, log: ResumeLog, what = 'link'): void {
  let first = true;
  stream.on('attached', () => { first = true; });
  stream.on('resumeFailed', (err: ResumeError) => {
    const o = { reason: err.reason, err: err.message, epoch: stream.epoch };
    if (first) log.warn(o, `${what}: resume attempt failed; retrying`);
    else log.debug(o, `${what}: resume attempt failed; retrying`);
    first = false;
  });
}
