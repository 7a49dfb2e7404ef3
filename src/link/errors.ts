/** Errors of the link (docs/link.md lists them). */
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
  constructor(why: string) {
    super('DK_LINK_SESSION_LOST', `link session lost: ${why}`);
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
  constructor(why: string, answered = false) {
    super('DK_LINK_SERVER_AUTH', `gateway authentication failed: ${why}`);
    this.answered = answered;
  }
}

/** A handshake step got no answer within its deadline. */
export class HandshakeTimeoutError extends LinkError {
  constructor(ms: number) {
    super('DK_LINK_HANDSHAKE', `handshake step timed out after ${ms} ms`);
  }
}

/** Malformed, oversized or unauthentic handshake messages or records. */
export class LinkProtocolError extends LinkError {
  constructor(why: string) {
    super('DK_LINK_PROTOCOL', why);
  }
}

/** The peer closed the session on purpose (destroy on its side). */
export class LinkResetError extends LinkError {
  constructor() {
    super('DK_LINK_RESET', 'the peer reset the link session');
  }
}
