/**
 * Typed errors of the DK chunk protocol. Every error has a stable `code`; docs/protocol.md lists
 * them. A protocol error always ends the link: the peer is not speaking DK correctly, and
 * resynchronising inside a byte stream is impossible.
 */
export class ProtocolError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
  }
}

/** L < 6, or shorter/longer than the frame type allows. */
export class FrameLengthError extends ProtocolError {
  constructor(type: number, length: number, why: string) {
    super('DK_FRAME_LENGTH', `bad frame length ${length} for type ${type}: ${why}`);
  }
}

/** A payload that has the right length but a malformed body (e.g. a CMD parameter list). */
export class PayloadError extends ProtocolError {
  constructor(what: string) {
    super('DK_PAYLOAD', `malformed payload: ${what}`);
  }
}

/** The peer sent more DAT bytes on a session than the credit it was granted. */
export class FlowControlError extends ProtocolError {
  constructor(session: number, over: number) {
    super('DK_FLOW_CONTROL', `session ${session} exceeded its receive window by ${over} bytes`);
  }
}

/** A frame that names a session the receiver does not have where that is not allowed. */
export class SessionStateError extends ProtocolError {
  constructor(what: string) {
    super('DK_SESSION_STATE', what);
  }
}
