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
 * The server's static key is not the pinned one, or its handshake proof failed. `timedOut`: the
 * server sent nothing before the handshake deadline, which a hung or overloaded gateway does too,
 * so it says less about the key than an answer that fails (or a close right after our message).
 */
export class ServerAuthError extends LinkError {
  readonly timedOut: boolean;
  constructor(why: string, timedOut = false) {
    super('DK_LINK_SERVER_AUTH', `gateway authentication failed: ${why}`);
    this.timedOut = timedOut;
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
