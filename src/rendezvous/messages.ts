/**
 * RendezvousMessage and IdPk ⇄ bytes, over the generated code (src/rendezvous/gen, `npm run proto`).
 * One message is one BytesCodec frame on TCP, one binary WebSocket message, or one UDP datagram.
 *
 * Decoding keeps unknown fields (newer clients add fields; a forwarded message keeps them, as
 * hbbs's rust-protobuf does) and refuses invalid UTF-8 in string fields, as rust-protobuf does.
 * An empty payload decodes to a message with no `union` case set; what to do with it is the
 * caller's decision (hbbs closes the TCP connection, FACTS §2).
 */
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { MessageDecodeError } from './errors.ts';
import { IdPkSchema, type IdPk } from './gen/handshake_pb.ts';
import { RendezvousMessageSchema, type RendezvousMessage } from './gen/rendezvous_pb.ts';

export type RendezvousMessageInit = MessageInitShape<typeof RendezvousMessageSchema>;
/** The name of the message a RendezvousMessage carries, e.g. 'registerPeer'. */
export type RendezvousCase = NonNullable<RendezvousMessage['union']['case']>;

export function encodeRendezvous(message: RendezvousMessageInit): Uint8Array {
  return toBinary(RendezvousMessageSchema, create(RendezvousMessageSchema, message));
}

/** Throws MessageDecodeError, and nothing else, for bytes that are not a RendezvousMessage. */
export function decodeRendezvous(bytes: Uint8Array): RendezvousMessage {
  try {
    return fromBinary(RendezvousMessageSchema, bytes);
  } catch (e) {
    throw new MessageDecodeError('hbb.RendezvousMessage', e);
  }
}

export function encodeIdPk(idPk: MessageInitShape<typeof IdPkSchema>): Uint8Array {
  return toBinary(IdPkSchema, create(IdPkSchema, idPk));
}

export function decodeIdPk(bytes: Uint8Array): IdPk {
  try {
    return fromBinary(IdPkSchema, bytes);
  } catch (e) {
    throw new MessageDecodeError('hbb.IdPk', e);
  }
}
