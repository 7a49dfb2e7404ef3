/**
 * Typed errors of the RustDesk-compatible rendezvous codecs. Every error has a stable `code`;
 * docs/rendezvous.md lists them. The RustDesk protocol has no error codes on the wire: a server
 * that meets one of these drops the datagram or closes the connection, as hbbs does.
 */
export class RendezvousError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A BytesCodec frame longer than the decoder's limit (or than the format can express). */
export class FrameTooLargeError extends RendezvousError {
  readonly length: number;
  readonly limit: number;
  constructor(length: number, limit: number) {
    super('RDV_FRAME_TOO_LARGE', `frame of ${length} bytes is over the limit of ${limit}`);
    this.length = length;
    this.limit = limit;
  }
}

/** A framing decoder used after it failed: the byte stream cannot be resynchronised. */
export class FramingStateError extends RendezvousError {
  constructor(what: string) {
    super('RDV_FRAMING_STATE', what);
  }
}

/** Bytes that are not a valid protobuf encoding of the expected message. */
export class MessageDecodeError extends RendezvousError {
  constructor(type: string, cause: unknown) {
    super('RDV_MESSAGE_DECODE', `not a valid ${type}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** AddrMangle bytes that no AddrMangle encoder produces. */
export class AddrMangleError extends RendezvousError {
  constructor(what: string) {
    super('RDV_ADDR_MANGLE', `malformed mangled address: ${what}`);
  }
}

/** An address given to the AddrMangle encoder that is not an IP address and port. */
export class AddressError extends RendezvousError {
  constructor(what: string) {
    super('RDV_ADDRESS', `invalid socket address: ${what}`);
  }
}

/** id_ed25519 / id_ed25519.pub that are not in hbbs's format, or do not belong together. */
export class KeyFileError extends RendezvousError {
  readonly path: string;
  constructor(path: string, what: string, options?: ErrorOptions) {
    super('RDV_KEY_FILE', `${path}: ${what}`, options);
    this.path = path;
  }
}

/** Key material of the wrong size, given in code rather than read from a file. */
export class KeyError extends RendezvousError {
  constructor(what: string) {
    super('RDV_KEY', what);
  }
}

/** A signed message (signature ‖ message) that is too short or does not verify. */
export class SignatureError extends RendezvousError {
  constructor(what: string) {
    super('RDV_SIGNATURE', what);
  }
}

/** Secure TCP (KeyExchange) failed: a malformed exchange or a frame that does not authenticate. */
export class SecureTcpError extends RendezvousError {
  constructor(message: string, options?: ErrorOptions) {
    super('RDV_SECURE_TCP', message, options);
  }
}
