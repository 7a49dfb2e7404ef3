import { randomBytes } from 'node:crypto';
import { dh, equal, generateKeyPair, hkdf, hmac, open, seal, sha256, type KeyPair } from './crypto.ts';
import { LinkProtocolError, ServerAuthError } from './errors.ts';

/**
 * The link handshake (docs/link.md): a Noise-NK-style exchange — the client knows the server's
 * static X25519 key — then a resume exchange authenticated by a key derived from the session.
 * Pure functions over bytes; the socket drivers live in client.ts and server.ts.
 *
 *   NEW     C→S  "DKL1" 01 e_c(32) seal(k1, purpose)              es = DH(e_c, S)
 *           S→C  01 e_s(32) seal(k2, session id)                  ee = DH(e_s, e_c)
 *   RESUME  C→S  "DKL1" 02 sid(16) cn(16)
 *           S→C  02 sn(16)                 (or 03: no such session)
 *           C→S  epoch(u32) recv(u64) HMAC(rk, "c", sid, cn, sn, epoch, recv)
 *           S→C  recv(u64) HMAC(rk, "s", sid, cn, sn, epoch, recv)
 */
export const MAGIC = Buffer.from('DKL1');
export const KIND_NEW = 1;
export const KIND_RESUME = 2;
export const KIND_UNKNOWN = 3;
export const PROLOGUE = Buffer.from('DoorKeeper link v1');

export const NEW_SIZE = 4 + 1 + 32 + 1 + 16; // magic, kind, e_c, sealed purpose
export const NEW_REPLY_SIZE = 1 + 32 + 16 + 16; // kind, e_s, sealed session id
export const RESUME_SIZE = 4 + 1 + 16 + 16;
export const RESUME_CHALLENGE_SIZE = 1 + 16;
export const RESUME_PROOF_SIZE = 4 + 8 + 32;
export const RESUME_REPLY_SIZE = 8 + 32;

/** What both sides hold after a NEW handshake. */
export interface SessionSecrets {
  sessionId: Buffer;
  /** Authenticates resumes. */
  resumeKey: Buffer;
  /** Traffic keys per epoch are derived from it. */
  master: Buffer;
  /** Salt of epoch 0's traffic keys: the handshake transcript hash. */
  salt: Buffer;
}

export interface TrafficKeys {
  c2s: Buffer;
  s2c: Buffer;
}

/** Fresh keys for every TCP connection (epoch): retransmitted bytes are never sealed twice under one key and nonce. */
export function trafficKeys(master: Buffer, salt: Buffer, epoch: number): TrafficKeys {
  const k = hkdf(master, salt, `dk-link traffic ${epoch}`, 64);
  return { c2s: k.subarray(0, 32), s2c: k.subarray(32) };
}

function finish(es: Buffer, ee: Buffer, h: Buffer, sessionId: Buffer): SessionSecrets {
  const master = hkdf(Buffer.concat([es, ee]), h, 'dk-link master', 32);
  return { sessionId, master, resumeKey: hkdf(master, Buffer.alloc(0), 'dk-link resume', 32), salt: h };
}

/** Client side of NEW: make the first message; `finish` checks the reply. */
export function clientNew(serverPublic: Buffer, purpose: number): { message: Buffer; finish(reply: Buffer): SessionSecrets } {
  const e = generateKeyPair();
  const h0 = sha256(PROLOGUE, serverPublic);
  const es = dh(e.privateKey, serverPublic);
  const h1 = sha256(h0, e.publicRaw);
  const sealed1 = seal(hkdf(es, h1, 'dk-link k1', 32), 0, Buffer.from([purpose]), h1);
  const message = Buffer.concat([MAGIC, Buffer.from([KIND_NEW]), e.publicRaw, sealed1]);
  return {
    message,
    finish(reply: Buffer): SessionSecrets {
      if (reply.length !== NEW_REPLY_SIZE || reply[0] !== KIND_NEW) throw new ServerAuthError('malformed handshake reply', true);
      const eS = reply.subarray(1, 33);
      const ee = dh(e.privateKey, eS);
      const h2 = sha256(h1, sealed1, eS);
      const sealed2 = reply.subarray(33);
      const sid = open(hkdf(Buffer.concat([es, ee]), h2, 'dk-link k2', 32), 0, sealed2, h2);
      // Only the holder of the pinned static key could compute es, hence k2: this authenticates the server.
      if (!sid) throw new ServerAuthError('the gateway could not prove it holds the pinned key', true);
      return finish(es, ee, sha256(h2, sealed2), sid);
    },
  };
}

/**
 * What the server sends for a NEW it cannot open (sealed to another key, or garbage): as many
 * random bytes as a reply, then it closes. The client cannot tell them from a reply that fails to
 * authenticate — which is what it is — so it learns for sure that this server does not hold the
 * key it pinned, while a close without a reply (overload, start-up) stays a transient failure.
 * Random bytes reveal nothing; the answer is 65 bytes to a 54-byte request, over TCP.
 */
export function decoyNewReply(): Buffer {
  return Buffer.concat([Buffer.from([KIND_NEW]), randomBytes(NEW_REPLY_SIZE - 1)]);
}

/** Server side of NEW: checks the first message (after its 5-byte prefix was read) and makes the reply. */
export function serverNew(staticKey: KeyPair, message: Buffer): { purpose: number; reply: Buffer; secrets: SessionSecrets } {
  if (message.length !== NEW_SIZE) throw new LinkProtocolError('bad NEW length');
  const eC = message.subarray(5, 37);
  const sealed1 = message.subarray(37);
  const h0 = sha256(PROLOGUE, staticKey.publicRaw);
  const es = dh(staticKey.privateKey, eC);
  const h1 = sha256(h0, eC);
  const purpose = open(hkdf(es, h1, 'dk-link k1', 32), 0, sealed1, h1);
  // A client that pinned another key (or garbage) cannot produce this record.
  if (!purpose || purpose.length !== 1) throw new LinkProtocolError('NEW not sealed to this gateway key (wrong pinned key?)');
  const e = generateKeyPair();
  const ee = dh(e.privateKey, eC);
  const h2 = sha256(h1, sealed1, e.publicRaw);
  const sid = randomBytes(16);
  const sealed2 = seal(hkdf(Buffer.concat([es, ee]), h2, 'dk-link k2', 32), 0, sid, h2);
  return {
    purpose: purpose[0]!,
    reply: Buffer.concat([Buffer.from([KIND_NEW]), e.publicRaw, sealed2]),
    secrets: finish(es, ee, sha256(h2, sealed2), sid),
  };
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n, 0);
  return b;
}
function u64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt(n), 0);
  return b;
}

export function resumeHello(sessionId: Buffer, cn: Buffer): Buffer {
  return Buffer.concat([MAGIC, Buffer.from([KIND_RESUME]), sessionId, cn]);
}

export function resumeProof(s: SessionSecrets, cn: Buffer, sn: Buffer, epoch: number, recv: number): Buffer {
  return Buffer.concat([u32(epoch), u64(recv), hmac(s.resumeKey, Buffer.from('c'), s.sessionId, cn, sn, u32(epoch), u64(recv))]);
}

/** Server: checks a proof. Returns null if it is not authentic (a replay against a fresh sn fails here). */
export function checkResumeProof(s: SessionSecrets, cn: Buffer, sn: Buffer, proof: Buffer): { epoch: number; recv: number } | null {
  if (proof.length !== RESUME_PROOF_SIZE) return null;
  const epoch = proof.readUInt32BE(0);
  const recv = Number(proof.readBigUInt64BE(4));
  const want = hmac(s.resumeKey, Buffer.from('c'), s.sessionId, cn, sn, u32(epoch), u64(recv));
  return equal(want, proof.subarray(12)) ? { epoch, recv } : null;
}

export function resumeReply(s: SessionSecrets, cn: Buffer, sn: Buffer, epoch: number, recv: number): Buffer {
  return Buffer.concat([u64(recv), hmac(s.resumeKey, Buffer.from('s'), s.sessionId, cn, sn, u32(epoch), u64(recv))]);
}

/** Client: checks the server's resume answer. */
export function checkResumeReply(s: SessionSecrets, cn: Buffer, sn: Buffer, epoch: number, reply: Buffer): number | null {
  if (reply.length !== RESUME_REPLY_SIZE) return null;
  const recv = Number(reply.readBigUInt64BE(0));
  const want = hmac(s.resumeKey, Buffer.from('s'), s.sessionId, cn, sn, u32(epoch), u64(recv));
  return equal(want, reply.subarray(8)) ? recv : null;
}
