import {
  createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman,
  generateKeyPairSync, hkdfSync, timingSafeEqual, type KeyObject,
} from 'node:crypto';
import { LinkProtocolError } from './errors.ts';

/**
 * The link's primitives, all from Node's built-in crypto (SPEC §5): X25519, HKDF-SHA256,
 * ChaCha20-Poly1305, HMAC-SHA256. Keys travel as 32 raw bytes.
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

function nonce(counter: bigint): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64BE(counter, 4);
  return n;
}

/** ChaCha20-Poly1305 with a 96-bit nonce made of a 64-bit counter that the caller never repeats per key. */
export function seal(key: Buffer, counter: bigint, plain: Buffer, aad?: Buffer): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, nonce(counter), { authTagLength: TAG });
  if (aad) c.setAAD(aad, { plaintextLength: plain.length });
  const out = c.update(plain);
  c.final();
  return Buffer.concat([out, c.getAuthTag()]);
}

/** Returns null when the record is not authentic. */
export function open(key: Buffer, counter: bigint, sealed: Buffer, aad?: Buffer): Buffer | null {
  if (sealed.length < TAG) return null;
  const d = createDecipheriv('chacha20-poly1305', key, nonce(counter), { authTagLength: TAG });
  d.setAuthTag(sealed.subarray(sealed.length - TAG));
  if (aad) d.setAAD(aad, { plaintextLength: sealed.length - TAG });
  const out = d.update(sealed.subarray(0, sealed.length - TAG));
  try {
    d.final();
  } catch {
    return null;
  }
  return out;
}
