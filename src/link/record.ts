import { open, seal, TAG } from './crypto.ts';
import { LinkProtocolError } from './errors.ts';

/**
 * Records after the handshake: u32 BE length, then ChaCha20-Poly1305 ciphertext+tag whose nonce
 * is a per-direction, per-epoch counter (never sent: a record out of order or replayed fails to
 * open). Plaintext: type (u8) and a body.
 */
export const Rec = { DATA: 1, ACK: 2, PING: 3, PONG: 4, FIN: 5, CLOSE: 6 } as const;
/** Largest application payload per record (SPEC §5: records of 16–64 KiB). */
export const MAX_DATA = 64 * 1024;
const MAX_SEALED = 1 + 8 + MAX_DATA + TAG;

export type Record =
  | { type: typeof Rec.DATA; offset: number; data: Buffer }
  | { type: typeof Rec.ACK; recv: number }
  | { type: typeof Rec.PING | typeof Rec.PONG; stamp: number }
  | { type: typeof Rec.FIN; offset: number }
  | { type: typeof Rec.CLOSE };

export class RecordSealer {
  readonly #key: Buffer;
  #counter = 0n;
  constructor(key: Buffer) {
    this.#key = key;
  }

  seal(plain: Buffer): Buffer {
    const sealed = seal(this.#key, this.#counter++, plain);
    const out = Buffer.allocUnsafe(4 + sealed.length);
    out.writeUInt32BE(sealed.length, 0);
    sealed.copy(out, 4);
    return out;
  }

  data(offset: number, data: Buffer): Buffer {
    const p = Buffer.allocUnsafe(9 + data.length);
    p[0] = Rec.DATA;
    p.writeBigUInt64BE(BigInt(offset), 1);
    data.copy(p, 9);
    return this.seal(p);
  }
  control(type: number, value: number): Buffer {
    const p = Buffer.allocUnsafe(9);
    p[0] = type;
    if (type === Rec.PING || type === Rec.PONG) p.writeDoubleBE(value, 1);
    else p.writeBigUInt64BE(BigInt(value), 1);
    return this.seal(p);
  }
  close(): Buffer {
    return this.seal(Buffer.from([Rec.CLOSE]));
  }
}

function parse(p: Buffer): Record {
  const type = p[0];
  if (type === Rec.CLOSE && p.length === 1) return { type: Rec.CLOSE };
  if (p.length < 9) throw new LinkProtocolError('record too short');
  switch (type) {
    case Rec.DATA: return { type: Rec.DATA, offset: Number(p.readBigUInt64BE(1)), data: p.subarray(9) };
    case Rec.ACK: if (p.length === 9) return { type: Rec.ACK, recv: Number(p.readBigUInt64BE(1)) }; break;
    case Rec.PING: case Rec.PONG: if (p.length === 9) return { type, stamp: p.readDoubleBE(1) }; break;
    case Rec.FIN: if (p.length === 9) return { type: Rec.FIN, offset: Number(p.readBigUInt64BE(1)) }; break;
  }
  throw new LinkProtocolError(`bad record type ${type} or length ${p.length}`);
}

/** Incremental: bytes in, authentic records out. Holds at most one record; rejects a length over the limit at once. */
export class RecordOpener {
  readonly #key: Buffer;
  #counter = 0n;
  #buf: Buffer = Buffer.alloc(0);

  constructor(key: Buffer) {
    this.#key = key;
  }

  push(chunk: Buffer, onRecord: (r: Record) => void): void {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    let off = 0;
    while (this.#buf.length - off >= 4) {
      const len = this.#buf.readUInt32BE(off);
      if (len < TAG + 1 || len > MAX_SEALED) throw new LinkProtocolError(`record length ${len} out of range`);
      if (this.#buf.length - off - 4 < len) break;
      const plain = open(this.#key, this.#counter++, this.#buf.subarray(off + 4, off + 4 + len));
      if (!plain) throw new LinkProtocolError('record failed authentication (tampered, replayed or reordered)');
      off += 4 + len;
      onRecord(parse(plain));
    }
    this.#buf = off === this.#buf.length ? Buffer.alloc(0) : Buffer.from(this.#buf.subarray(off));
  }
}
