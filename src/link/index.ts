/** The link as a library, usable without the rest of DoorKeeper: `connectLink` and `LinkServer`. */
export { connectLink, migrateLink, type ConnectOptions } from './client.ts';
export { LinkServer, type LinkServerOptions } from './server.ts';
export { LinkStream, DEFAULT_LINK_OPTIONS, type LinkOptions } from './stream.ts';
export { LinkSession, type LinkSessionInit, type RecordSink } from './session.ts';
export { Attachment, type DirectionKeys } from './attachment.ts';
export { ResumeInitiator, ResumeResponder, type Resumed } from './resume.ts';
export { realClock, type Clock, type LinkTimer } from './clock.ts';
export { generateKeyPair, type KeyPair } from './crypto.ts';
export { loadOrCreateStaticKey, encodeKey, decodeKey } from './keys.ts';
export * from './errors.ts';
export { MAGIC } from './handshake.ts';
export { COMPAT_DATA, MAX_DATA } from './record.ts';
