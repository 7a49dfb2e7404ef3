/**
 * Errors of `dk connect` (docs/api.md, "dk connect", lists the codes). A refusal carries the
 * gateway's code (`unauthorized`, `forbidden`, …); the client adds its own for what went wrong
 * on its side.
 */

/** Client-side codes of ConnectRefusedError, besides the gateway's own. */
export const CLIENT_CODES = {
  /** The gateway did not answer the request line with one JSON line. */
  BAD_REPLY: 'bad_reply',
  /** dk connect itself is shutting down. */
  CLOSED: 'closed',
  /** The link session to the gateway failed or ended. */
  LINK: 'link',
  /** The link session ended, or the local end closed, while the session waited for it (not counted as a refusal). */
  LATE: 'late',
} as const;

/** The gateway refused the connect request (its code), or the client could not get an answer (CLIENT_CODES). */
export class ConnectRefusedError extends Error {
  readonly code: string;
  /** `cause`: the link's own error when the link failed (a wrong pinned key is a ServerAuthError that was answered). */
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ConnectRefusedError';
    this.code = code;
  }
}

/** The connect request or reply line was not one line of at most `max` bytes in time. */
export class RequestLineError extends Error {
  readonly code: 'DK_CONNECT_LINE_TOO_LONG' | 'DK_CONNECT_LINE_ENDED' | 'DK_CONNECT_LINE_TIMEOUT';
  constructor(code: RequestLineError['code'], message: string) {
    super(message);
    this.name = 'RequestLineError';
    this.code = code;
  }
}

/** The gateway accepted the request but sent no HELLO on the link's mux in time. */
export class NoHelloError extends Error {
  readonly code = 'DK_CONNECT_NO_HELLO';
  constructor(ms: number) {
    super(`no HELLO from the gateway within ${ms} ms`);
    this.name = 'NoHelloError';
  }
}
