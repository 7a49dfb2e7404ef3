import {
  createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey, createSecretKey, diffieHellman,
  generateKeyPairSync, hkdfSync, timingSafeEqual, type CipherGCM, type DecipherGCM, type KeyObject,
} from 'node:crypto';
import { LinkProtocolError } from './errors.ts';

/**
 * The link's primitives, all from Node's built-in crypto (SPEC §5): X25519, HKDF-SHA256,
 * AES-256-GCM, HMAC-SHA256. Keys travel as 32 raw bytes.
 */
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');

export interface KeyPair {
  privateKey: KeyObject;
  publicRaw: Buffer;
}

export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { privateKey, publicRaw: rawPublic(publicKey) };
}

export function rawPublic(k: KeyObject): Buffer {
  return k.export({ format: 'der', type: 'spki' }).subarray(SPKI_X25519.length);
}

export function privateFromRaw(raw: Buffer): KeyPair {
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, raw]), format: 'der', type: 'pkcs8' });
  return { privateKey, publicRaw: rawPublic(createPublicKey(privateKey)) };
}

export function privateRaw(k: KeyObject): Buffer {
  return k.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_X25519.length);
}

export function dh(priv: KeyObject, peerPublicRaw: Buffer): Buffer {
  if (peerPublicRaw.length !== 32) throw new LinkProtocolError('X25519 public key must be 32 bytes');
  const publicKey = createPublicKey({ key: Buffer.concat([SPKI_X25519, peerPublicRaw]), format: 'der', type: 'spki' });
  const shared = diffieHellman({ privateKey: priv, publicKey });
  // An all-zero result means a low-order point was sent: refuse (RFC 7748 §6.1).
  if (shared.every((b) => b === 0)) throw new LinkProtocolError('X25519 produced the all-zero secret');
  return shared;
}

export function hkdf(ikm: Buffer, salt: Buffer, info: string, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, length));
}

export function sha256(...parts: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

export function hmac(key: Buffer, ...parts: Buffer[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

export function equal(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export const TAG = 16;
/**
 * The link's AEAD. AES-256-GCM rather than ChaCha20-Poly1305 (SPEC §5 allows either): with AES
 * instructions, which every x86-64 and ARMv8 server has, Node seals 64 KiB records about 1.7×
 * faster with it (bench notes in docs/performance.md).
 */
export const AEAD = 'aes-256-gcm';

/** A 32-byte AEAD key made once into a KeyObject: a raw Buffer key costs Node a KeyObject per record. */
export function aeadKey(raw: Buffer): KeyObject {
  if (raw.length !== 32) throw new LinkProtocolError('AEAD key must be 32 bytes');
  return createSecretKey(raw);
}

/** Writes the 96-bit nonce for `counter` (a 64-bit counter in the last 8 bytes) into `n`. */
export function nonceInto(n: Buffer, counter: number): Buffer {
  n.fill(0, 0, 4);
  n.writeUInt32BE(Math.floor(counter / 2 ** 32), 4);
  n.writeUInt32BE(counter >>> 0, 8);
  return n;
}

export function cipher(key: KeyObject, nonce: Buffer): CipherGCM {
  return createCipheriv(AEAD, key, nonce, { authTagLength: TAG });
}
export function decipher(key: KeyObject, nonce: Buffer): DecipherGCM {
  return createDecipheriv(AEAD, key, nonce, { authTagLength: TAG });
}

/** One-shot AEAD for the handshake (nonce: a counter the caller never repeats per key). */
export function seal(key: Buffer, counter: number, plain: Buffer, aad?: Buffer): Buffer {
  const c = cipher(aeadKey(key), nonceInto(Buffer.allocUnsafe(12), counter));
  if (aad) c.setAAD(aad);
  const out = c.update(plain);
  c.final();
  return Buffer.concat([out, c.getAuthTag()]);
}

/** Returns null when the message is not authentic. */
export function open(key: Buffer, counter: number, sealed: Buffer, aad?: Buffer): Buffer | null {
  if (sealed.length < TAG) return null;
  const d = decipher(aeadKey(key), nonceInto(Buffer.allocUnsafe(12), counter));
  d.setAuthTag(sealed.subarray(sealed.length - TAG));
  if (aad) d.setAAD(aad);
  const out = d.update(sealed.subarray(0, sealed.length - TAG));
  try {
    d.final();
  } catch {
    return null;
  }
  return out;
}
