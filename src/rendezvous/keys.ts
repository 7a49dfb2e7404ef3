/**
 * The server's Ed25519 key pair in hbbs's file format (rustdesk-server src/common.rs:161-209
 * `gen_sk`), and the libsodium-style signing that hbbs uses for the signed IdPk.
 *
 * - `id_ed25519`: standard padded base64 of the 64-byte libsodium secret key, seed ‖ public key.
 * - `id_ed25519.pub`: base64 of the 32-byte public key, no newline. It is what every client
 *   puts in its "Key" setting, so an operator moving from hbbs copies both files.
 * - Signatures are libsodium's combined form (crypto_sign): 64-byte signature ‖ message.
 *
 * Node's own Ed25519 (RFC 8032, as libsodium) does the maths; the seed enters through a PKCS#8
 * DER prefix. libsodium signs with the public half stored in the secret key, Node with the one
 * derived from the seed, so a secret key whose halves disagree is refused rather than used.
 */
import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyError, KeyFileError, SignatureError } from './errors.ts';
import { decodeIdPk, encodeIdPk } from './messages.ts';

export const SECRET_KEY_FILE = 'id_ed25519';
export const PUBLIC_KEY_FILE = 'id_ed25519.pub';
export const SEED_BYTES = 32;
export const PUBLIC_KEY_BYTES = 32;
export const SECRET_KEY_BYTES = 64;
export const SIGNATURE_BYTES = 64;

/** RFC 8410 PrivateKeyInfo for Ed25519 up to the 32 seed bytes; SubjectPublicKeyInfo likewise. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** gen_sk regenerates until the public key's base64 has no '/' (easier to paste); it gives up after 300. */
const GENERATE_TRIES = 300;

export interface ServerKeyPair {
  /** seed ‖ public key, the content of id_ed25519. */
  readonly secretKey: Buffer;
  readonly publicKey: Buffer;
  /** The content of id_ed25519.pub: the clients' "Key" setting and the key hbbs enforces by default. */
  readonly publicKeyBase64: string;
  readonly privateKeyObject: KeyObject;
  readonly publicKeyObject: KeyObject;
}

export function publicKeyObject(publicKey: Uint8Array): KeyObject {
  if (publicKey.length !== PUBLIC_KEY_BYTES) throw new KeyError(`an Ed25519 public key is ${PUBLIC_KEY_BYTES} bytes, got ${publicKey.length}`);
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]), format: 'der', type: 'spki' });
}

export function keyPairFromSeed(seed: Uint8Array): ServerKeyPair {
  if (seed.length !== SEED_BYTES) throw new KeyError(`an Ed25519 seed is ${SEED_BYTES} bytes, got ${seed.length}`);
  const privateKeyObject = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const pubObject = createPublicKey(privateKeyObject);
  const publicKey = pubObject.export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519_PREFIX.length);
  return {
    secretKey: Buffer.concat([seed, publicKey]),
    publicKey: Buffer.from(publicKey),
    publicKeyBase64: publicKey.toString('base64'),
    privateKeyObject,
    publicKeyObject: pubObject,
  };
}

/** From a 64-byte libsodium secret key; throws KeyError if its public half is not the seed's. */
export function keyPairFromSecretKey(secretKey: Uint8Array): ServerKeyPair {
  if (secretKey.length !== SECRET_KEY_BYTES) throw new KeyError(`an Ed25519 secret key is ${SECRET_KEY_BYTES} bytes (seed ‖ public key), got ${secretKey.length}`);
  const pair = keyPairFromSeed(secretKey.subarray(0, SEED_BYTES));
  if (!pair.publicKey.equals(secretKey.subarray(SEED_BYTES))) throw new KeyError('the secret key\'s public half does not belong to its seed');
  return pair;
}

export function generateKeyPair(random: (n: number) => Uint8Array = randomBytes): ServerKeyPair {
  let pair = keyPairFromSeed(random(SEED_BYTES));
  for (let i = 0; i < GENERATE_TRIES && pair.publicKeyBase64.includes('/'); i++) pair = keyPairFromSeed(random(SEED_BYTES));
  return pair;
}

function decodeBase64(text: string, bytes: number, path: string, what: string): Buffer {
  const t = text.trim(); // gen_sk trims; editors add newlines
  const b = BASE64.test(t) ? Buffer.from(t, 'base64') : null;
  if (b?.length !== bytes) {
    throw new KeyFileError(path, `malformed ${what}: expected standard base64 of ${bytes} bytes${t.startsWith('-----BEGIN') ? ' (this is a PEM/OpenSSH key, not hbbs\'s format)' : ''}`);
  }
  return b;
}

/** The content of id_ed25519; `path` only names the file in errors. */
export function parseSecretKeyFile(text: string, path: string = SECRET_KEY_FILE): ServerKeyPair {
  const sk = decodeBase64(text, SECRET_KEY_BYTES, path, 'private key (seed ‖ public key)');
  try {
    return keyPairFromSecretKey(sk);
  } catch (e) {
    throw new KeyFileError(path, e instanceof Error ? e.message : String(e), { cause: e });
  }
}

/** The content of id_ed25519.pub (or a client's Key setting). */
export function parsePublicKeyFile(text: string, path: string = PUBLIC_KEY_FILE): Buffer {
  return decodeBase64(text, PUBLIC_KEY_BYTES, path, 'public key');
}

export function formatSecretKeyFile(pair: ServerKeyPair): string {
  return pair.secretKey.toString('base64');
}

export function formatPublicKeyFile(pair: ServerKeyPair): string {
  return pair.publicKeyBase64;
}

export interface KeyFilesInit {
  /** Randomness for a new key pair (tests pass a fixed source). */
  random?: (n: number) => Uint8Array;
}

export interface LoadedKeyFiles {
  keys: ServerKeyPair;
  /** A new pair was generated and both files written. */
  created: boolean;
  /** id_ed25519 existed and id_ed25519.pub did not: it was written from the secret key. */
  wrotePublicFile: boolean;
  /** id_ed25519 can be read by group or others (hbbs writes it 0644; we write 0600). */
  secretFileTooOpen: boolean;
}

/**
 * Loads id_ed25519 (and checks id_ed25519.pub against it) from `dir`, or creates both as hbbs
 * does when id_ed25519 is absent: the secret file 0600, created exclusively so that two
 * processes starting at once end up with one key. Unlike hbbs, a .pub that does not match the
 * secret key is an error: clients hold the .pub, and hbbs would silently enforce the other key.
 */
export async function loadOrCreateKeyFiles(dir: string, init: KeyFilesInit = {}): Promise<LoadedKeyFiles> {
  const skPath = join(dir, SECRET_KEY_FILE);
  const pkPath = join(dir, PUBLIC_KEY_FILE);
  let created = false;
  let skText = await readIfExists(skPath);
  if (skText === null) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const fresh = generateKeyPair(init.random);
    // Written whole under a temporary name, then linked into place: a crash never leaves half a
    // key, and link() fails if another process created the file first (then we load theirs).
    const tmp = `${skPath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, formatSecretKeyFile(fresh), { mode: 0o600, flag: 'wx' });
    try {
      await link(tmp, skPath);
      created = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      await unlink(tmp);
    }
    if (created) await writeFile(pkPath, formatPublicKeyFile(fresh), { mode: 0o644 });
    skText = await readFile(skPath, 'utf8');
  }
  const keys = parseSecretKeyFile(skText, skPath);
  const mode = (await stat(skPath)).mode;
  let wrotePublicFile = false;
  const pkText = await readIfExists(pkPath);
  if (pkText === null) {
    await writeFile(pkPath, formatPublicKeyFile(keys), { mode: 0o644 });
    wrotePublicFile = !created;
  } else if (!parsePublicKeyFile(pkText, pkPath).equals(keys.publicKey)) {
    throw new KeyFileError(pkPath, `does not match ${SECRET_KEY_FILE} (whose public key is ${keys.publicKeyBase64}); clients use the .pub content as their Key setting: restore the matching pair or delete the .pub to rewrite it`);
  }
  return { keys, created, wrotePublicFile, secretFileTooOpen: (mode & 0o077) !== 0 };
}

async function readIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** libsodium crypto_sign: 64-byte signature ‖ message. */
export function signCombined(message: Uint8Array, pair: ServerKeyPair): Buffer {
  return Buffer.concat([sign(null, message, pair.privateKeyObject), message]);
}

/** libsodium crypto_sign_open: the message if the signature verifies, else SignatureError. */
export function openCombined(signed: Uint8Array, publicKey: Uint8Array | KeyObject): Buffer {
  if (signed.length < SIGNATURE_BYTES) throw new SignatureError(`a signed message is at least ${SIGNATURE_BYTES} bytes, got ${signed.length}`);
  const key = publicKey instanceof Uint8Array ? publicKeyObject(publicKey) : publicKey;
  const message = Buffer.from(signed.subarray(SIGNATURE_BYTES));
  if (!verify(null, message, key, signed.subarray(0, SIGNATURE_BYTES))) throw new SignatureError('the signature does not verify with this public key');
  return message;
}

/**
 * What hbbs puts in PunchHoleResponse.pk / RelayResponse.pk (rendezvous_server.rs:1214-1236):
 * sign(IdPk{id, pk}) with the server key, pk being the peer's registered 32-byte Ed25519 key.
 */
export function signIdPk(id: string, peerPublicKey: Uint8Array, pair: ServerKeyPair): Buffer {
  return signCombined(encodeIdPk({ id, pk: peerPublicKey }), pair);
}

/** The client's check (decode_id_pk): verify with the server key, parse IdPk, 32-byte pk. */
export function openIdPk(signed: Uint8Array, serverPublicKey: Uint8Array | KeyObject): { id: string; pk: Uint8Array } {
  const idPk = decodeIdPk(openCombined(signed, serverPublicKey));
  if (idPk.pk.length !== PUBLIC_KEY_BYTES) throw new SignatureError(`the signed IdPk carries a ${idPk.pk.length}-byte key, not ${PUBLIC_KEY_BYTES}`);
  return { id: idPk.id, pk: idPk.pk };
}
