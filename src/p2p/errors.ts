/**
 * Errors of direct paths (docs/p2p.md §8 lists every code). A failed punch is not an error: it is
 * a `PunchResult` with a reason per candidate (reason.ts). These are for bad input — malformed
 * coordination messages or select frames — and for a coordinator that cannot pair a side.
 */
export class P2pError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A coordination line or select frame that is malformed, oversized or of an unknown kind. */
export class P2pProtocolError extends P2pError {
  constructor(what: string, options?: ErrorOptions) {
    super('DK_P2P_PROTOCOL', what, options);
  }
}

/** The coordinator refused or dropped a side: table full, no peer in time, peer gone, duplicate side. */
export class CoordinatorError extends P2pError {
  constructor(what: string) {
    super('DK_P2P_COORDINATOR', what);
  }
}

/** An address that is not an IP literal and port, or one that must never be dialled (loopback, unspecified, multicast). */
export class CandidateError extends P2pError {
  constructor(what: string) {
    super('DK_P2P_CANDIDATE', what);
  }
}
