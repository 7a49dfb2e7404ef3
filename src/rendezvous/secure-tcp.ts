import { createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import nacl from 'tweetnacl';
import { SecureTcpError } from './errors.ts';
import { signCombined, type ServerKeyPair } from './keys.ts';
import { encodeRendezvous } from './messages.ts';

/**
 * The server side of RustDesk's secure TCP (FACTS §7): what clients logged in to an API server
 * require since 1.4.1, and what open hbbs never sends.
 *
 * 1. On accept the server sends KeyExchange{keys: [sign(server_box_pk)]}: an X25519 box key
 *    (a fresh one every minute, KeyExchangeSource), signed with the server's Ed25519 key (libsodium combined format), so
 *    the client, which holds the server's public key as its Key setting, knows whom it talks to.
 * 2. A client that wants encryption answers KeyExchange{keys: [client_box_pk (32),
 *    crypto_box(sym_key, nonce 0, server_box_pk, client_box_sk) (48)]}. The server opens the
 *    box: the 32-byte secretbox key for the rest of the connection.
 * 3. Every later frame is secretbox(payload) (XSalsa20-Poly1305, MAC ‖ ciphertext), the nonce a
 *    little-endian u64 counter in the first 8 of 24 bytes, one counter per direction, the first
 *    frame using 1. Frames of 0 or 1 bytes are not encrypted (empty-frame heartbeats).
 * A client that does not want encryption sends anything else first and the connection goes on
 * in clear; clients skip an unsolicited KeyExchange while they wait for answers.
 *
 * crypto_box = secretbox keyed by HSalsa20(X25519(sk, pk), 0¹⁶): X25519 is Node's, HSalsa20 and
 * secretbox are tweetnacl's (Node has no XSalsa20 or Poly1305).
 */
const ZERO_NONCE = new Uint8Array(24);
const ZERO16 = new Uint8Array(16);
const SIGMA = new TextEncoder().encode('expand 32-byte k');
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex');

export class SecureChannel {
  readonly #key: Uint8Array;
  #sendSeq = 0n;
  #recvSeq = 0n;

  constructor(key: Uint8Array) {
    this.#key = key;
  }

  seal(payload: Uint8Array): Uint8Array {
    return nacl.secretbox(payload, nonce(++this.#sendSeq), this.#key);
  }

  /** The plaintext, or SecureTcpError for a frame that does not authenticate (close the connection). */
  open(frame: Uint8Array): Uint8Array {
    if (frame.length <= 1) return frame;
    const out = nacl.secretbox.open(frame, nonce(++this.#recvSeq), this.#key);
    if (!out) throw new SecureTcpError('a frame failed authentication');
    return out;
  }
}

export class ServerKeyExchange {
  readonly #boxSecret: KeyObject;
  /** The first frame's payload: the signed KeyExchange. */
  readonly hello: Uint8Array;

  constructor(serverKey: ServerKeyPair) {
    const { publicKey, privateKey } = generateKeyPairSync('x25519');
    this.#boxSecret = privateKey;
    const boxPk = publicKey.export({ format: 'der', type: 'spki' }).subarray(X25519_SPKI.length);
    this.hello = encodeRendezvous({ union: { case: 'keyExchange', value: { keys: [signCombined(boxPk, serverKey)] } } });
  }

  /**
   * The channel for a client's KeyExchange{keys: [pk32, sealed48]}; SecureTcpError when it is
   * malformed or does not open.
   */
  accept(keys: readonly Uint8Array[]): SecureChannel {
    if (keys.length !== 2 || keys[0]!.length !== 32 || keys[1]!.length !== 48) {
      throw new SecureTcpError(`a client KeyExchange carries a 32-byte key and a 48-byte box, got ${keys.length} keys`);
    }
    let shared: Buffer;
    try {
      const peer = createPublicKey({ key: Buffer.concat([X25519_SPKI, keys[0]!]), format: 'der', type: 'spki' });
      shared = diffieHellman({ privateKey: this.#boxSecret, publicKey: peer });
    } catch (e) {
      throw new SecureTcpError('the client box key is not a usable X25519 key', { cause: e });
    }
    const sym = nacl.secretbox.open(keys[1]!, ZERO_NONCE, boxKey(shared));
    if (!sym || sym.length !== 32) throw new SecureTcpError('the sealed key does not open with this connection key');
    return new SecureChannel(sym);
  }
}

/**
 * The server's box key, made afresh every `rotateMs` rather than per connection: making and
 * signing a key is about 0.1 ms, which every connection (and every connection a flood opens)
 * would otherwise cost. Each client still picks its own symmetric key and seals it to the current
 * box key; a connection keeps the key it was offered, so rotation never breaks one.
 */
export class KeyExchangeSource {
  readonly #serverKey: ServerKeyPair;
  readonly #rotateMs: number;
  readonly #now: () => number;
  #current: ServerKeyExchange | null = null;
  #madeAt = 0;

  constructor(serverKey: ServerKeyPair, rotateMs = 60_000, now: () => number = Date.now) {
    this.#serverKey = serverKey;
    this.#rotateMs = rotateMs;
    this.#now = now;
  }

  current(): ServerKeyExchange {
    const now = this.#now();
    if (!this.#current || now - this.#madeAt >= this.#rotateMs) {
      this.#current = new ServerKeyExchange(this.#serverKey);
      this.#madeAt = now;
    }
    return this.#current;
  }
}

/** What a RustDesk client does (create_symmetric_key_msg): used by tests and the bench. */
export function clientKeyExchange(serverBoxPk: Uint8Array): { keys: [Uint8Array, Uint8Array]; channel: SecureChannel } {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  const pk = publicKey.export({ format: 'der', type: 'spki' }).subarray(X25519_SPKI.length);
  const server = createPublicKey({ key: Buffer.concat([X25519_SPKI, serverBoxPk]), format: 'der', type: 'spki' });
  const shared = diffieHellman({ privateKey, publicKey: server });
  const sym = nacl.randomBytes(32);
  return { keys: [pk, nacl.secretbox(sym, ZERO_NONCE, boxKey(shared))], channel: new SecureChannel(sym) };
}

/** crypto_box_beforenm: HSalsa20 of the X25519 shared secret (tweetnacl's typings omit `lowlevel`). */
function boxKey(shared: Uint8Array): Uint8Array {
  const k = new Uint8Array(32);
  (nacl as unknown as { lowlevel: { crypto_core_hsalsa20(out: Uint8Array, inp: Uint8Array, k: Uint8Array, c: Uint8Array): void } })
    .lowlevel.crypto_core_hsalsa20(k, ZERO16, shared, SIGMA);
  return k;
}

function nonce(seq: bigint): Uint8Array {
  const n = new Uint8Array(24);
  new DataView(n.buffer).setBigUint64(0, seq, true);
  return n;
}
