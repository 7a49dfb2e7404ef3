import { P2pProtocolError } from './errors.ts';

/**
 * The select exchange on a punched connection (docs/p2p.md §3). Several candidates may connect at
 * once, and each side must keep the *same* connection: the initiator sends SELECT with the
 * punch's token on each connection it has, the responder answers ACK on the first one that
 * carries the right token and resets the others, and the initiator keeps the connection whose ACK
 * it reads first. The token comes from the coordinator; it tells a connection of this punch from
 * a stray one. It proves nothing more: the link's handshake authenticates the peer.
 *
 *   offset  size  field
 *   0       4     magic "DKP1"
 *   4       1     kind: 1 SELECT, 2 ACK
 *   5       16    token
 */
export const SELECT_MAGIC = Buffer.from('DKP1', 'latin1');
export const TOKEN_BYTES = 16;
export const SELECT_BYTES = 4 + 1 + TOKEN_BYTES;

export type SelectKind = 'select' | 'ack';
const KIND_BYTE: Readonly<Record<SelectKind, number>> = { select: 1, ack: 2 };

export function encodeSelect(kind: SelectKind, token: Uint8Array): Buffer {
  if (token.length !== TOKEN_BYTES) throw new P2pProtocolError(`select token must be ${TOKEN_BYTES} bytes, got ${token.length}`);
  const out = Buffer.alloc(SELECT_BYTES);
  SELECT_MAGIC.copy(out, 0);
  out[4] = KIND_BYTE[kind];
  out.set(token, 5);
  return out;
}

/** Decodes exactly SELECT_BYTES bytes; throws P2pProtocolError on anything else. */
export function decodeSelect(bytes: Uint8Array): { kind: SelectKind; token: Buffer } {
  if (bytes.length !== SELECT_BYTES) throw new P2pProtocolError(`select frame must be ${SELECT_BYTES} bytes, got ${bytes.length}`);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (!b.subarray(0, 4).equals(SELECT_MAGIC)) throw new P2pProtocolError('select frame: bad magic');
  const kind = b[4] === 1 ? 'select' : b[4] === 2 ? 'ack' : undefined;
  if (kind === undefined) throw new P2pProtocolError(`select frame: unknown kind ${b[4]}`);
  return { kind, token: Buffer.from(b.subarray(5)) };
}
