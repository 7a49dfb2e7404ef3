/**
 * Errors of the mux (docs/protocol.md lists the codes). Wire-level errors are the protocol's
 * (src/protocol/errors.ts); these are the mux's own.
 */

/** Nothing arrived from the peer for `ms` (plain mode's dead-link detection; the link has its own). */
export class LinkDeadError extends Error {
  readonly code = 'DK_LINK_DEAD';
  constructor(ms: number) {
    super(`no bytes from the peer for ${ms} ms`);
    this.name = 'LinkDeadError';
  }
}

/** This mux already holds `maxSessions` sessions: open() refuses to add one. */
export class SessionLimitError extends Error {
  readonly code = 'DK_SESSION_LIMIT';
  constructor(max: number) {
    super(`the link already carries ${max} sessions (max_sessions_per_link / max_sessions)`);
    this.name = 'SessionLimitError';
  }
}
