import { P2pProtocolError } from './errors.ts';

/**
 * The first bytes of a connection to serv_port that is not a link (docs/p2p.md §9):
 *
 *   relay join    "DKR1" side(1: client, 2: agent) token(16)     then raw bytes both ways once paired
 *   coordination  "DKC1"                                         then the coordinator's lines (coord-messages.ts)
 *
 * The gateway tells them from the link ("DKL1") and the seed's plain handshake by the magic.
 */
export const RELAY_MAGIC = Buffer.from('DKR1', 'latin1');
export const COORD_MAGIC = Buffer.from('DKC1', 'latin1');
export const RELAY_HEADER_BYTES = 4 + 1 + 16;
export const RelaySide = { CLIENT: 1, AGENT: 2 } as const;
export type RelaySide = (typeof RelaySide)[keyof typeof RelaySide];

export function encodeRelayHeader(side: RelaySide, token: Buffer): Buffer {
  if (token.length !== 16) throw new P2pProtocolError('relay token must be 16 bytes');
  return Buffer.concat([RELAY_MAGIC, Buffer.from([side]), token]);
}

export function decodeRelayHeader(b: Buffer): { side: RelaySide; token: Buffer } {
  if (b.length !== RELAY_HEADER_BYTES) throw new P2pProtocolError(`relay header must be ${RELAY_HEADER_BYTES} bytes`);
  if (!b.subarray(0, 4).equals(RELAY_MAGIC)) throw new P2pProtocolError('relay header: bad magic');
  const side = b[4];
  if (side !== RelaySide.CLIENT && side !== RelaySide.AGENT) throw new P2pProtocolError(`relay header: unknown side ${side}`);
  return { side, token: Buffer.from(b.subarray(5)) };
}
