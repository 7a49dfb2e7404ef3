/**
 * RustDesk-compatible rendezvous (hbbs) and relay (hbbr): the codec layer (pure functions and a
 * decoder class) and the relay server (docs/rendezvous.md).
 */
export * from './errors.ts';
export * from './framing.ts';
export * from './addr-mangle.ts';
export * from './messages.ts';
export * from './keys.ts';
export * from './gen/rendezvous_pb.ts';
export * from './gen/handshake_pb.ts';
export * from './relay-pairing.ts';
export * from './relay-request.ts';
export * from './relay-end.ts';
export * from './relay-pipe.ts';
export * from './relay-server.ts';
