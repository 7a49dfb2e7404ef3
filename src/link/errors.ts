/**
 * Errors of the link: a class per error, each with a stable `code` and a default message
 * (docs/link.md §7 lists every code with its class). The link has no wire error codes: a session
 * is reset by a CLOSE record, everything else ends the connection without a word.
 */
export class LinkError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'LinkError';
    this.code = code;
  }
}

/** The server no longer has this session (expired while detached, or never existed). Never a silent EOF. */
export class SessionLostError extends LinkError {
  constructor(why = 'the session is gone') {
    super('DK_LINK_SESSION_LOST', `link session lost: ${why}`);
    this.name = 'SessionLostError';
  }
}

/**
 * The server did not prove it holds the pinned key. `answered`: it sent a whole reply and the
 * reply failed authentication — a gateway with another key does exactly that (server.ts answers a
 * NEW it cannot open with random bytes), so this is evidence of a wrong pinned key. Without it the
 * server closed or went silent first, which an overloaded, starting or restarting gateway does too.
 */
export class ServerAuthError extends LinkError {
  readonly answered: boolean;
  constructor(why = 'no proof of the pinned key', answered = false) {
    super('DK_LINK_SERVER_AUTH', `gateway authentication failed: ${why}`);
    this.name = 'ServerAuthError';
    this.answered = answered;
  }
}

/** A handshake's connection closed or failed before the step's bytes arrived. */
export class HandshakeError extends LinkError {
  constructor(why = 'connection closed during the handshake') {
    super('DK_LINK_HANDSHAKE', why);
    this.name = 'HandshakeError';
  }
}

/** A handshake step got no answer within its deadline (same code as HandshakeError: the caller retries either way). */
export class HandshakeTimeoutError extends HandshakeError {
  constructor(ms: number) {
    super(`handshake step timed out after ${ms} ms`);
    this.name = 'HandshakeTimeoutError';
  }
}

/** Malformed, oversized or unauthentic handshake messages or records. */
export class LinkProtocolError extends LinkError {
  constructor(why = 'malformed link message') {
    super('DK_LINK_PROTOCOL', why);
    this.name = 'LinkProtocolError';
  }
}

/** The peer closed the session on purpose (destroy on its side). */
export class LinkResetError extends LinkError {
  constructor() {
    super('DK_LINK_RESET', 'the peer reset the link session');
    this.name = 'LinkResetError';
  }
}

/** The server holds `maxSessions` sessions already; a NEW handshake is refused. */
export class TooManySessionsError extends LinkError {
  constructor(max: number) {
    super('DK_LINK_TOO_MANY_SESSIONS', `too many link sessions (at most ${max})`);
    this.name = 'TooManySessionsError';
  }
}

/**
 * Why a resume failed (resume.ts, session.ts): each is reported as a 'resumeFailed' event with a
 * ResumeError, on the stream the resume was for (and to LinkServer's onError on the server).
 */
export type ResumeFailure =
  /** The server answered "no such session" (03); unauthenticated, so the client needs three in a row. */
  | 'unknown-session'
  /** The resume proof (server) or its answer (client) failed its HMAC: a replay, a forgery, or a corrupted message. */
  | 'not-authentic'
  /** The proof's epoch is not newer than the session's: a replay of an older resume. */
  | 'stale-epoch'
  /** The peer reports a position outside what we hold (below what it acknowledged, beyond what we sent): the session is unusable. */
  | 'bad-position'
  /** The session ended (destroyed or complete) while the resume ran. */
  | 'session-ended'
  /** The transport could not be opened, closed, failed or timed out during the exchange. */
  | 'transport'
  /** Another resume of the same stream is running (client.ts: migrateLink while the resume loop runs, or two migrations). */
  | 'busy';

export class ResumeError extends LinkError {
  readonly reason: ResumeFailure;
  constructor(reason: ResumeFailure, why: string = reason) {
    super('DK_LINK_RESUME', `link resume failed (${reason}): ${why}`);
    this.name = 'ResumeError';
    this.reason = reason;
  }
}
