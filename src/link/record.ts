import type { KeyObject } from 'node:crypto';
import { aeadKey, cipher, decipher, nonceInto, TAG } from './crypto.ts';
import { LinkProtocolError } from './errors.ts';
import { copyInto, join, slice, totalLength } from './parts.ts';

/**
 * Records after the handshake: u32 BE length, then AES-256-GCM ciphertext+tag whose nonce
 * is a per-direction, per-epoch counter (never sent: a record out of order or replayed fails to
 * open). Plaintext: type (u8) and a body.
 */
export const Rec = { DATA: 1, ACK: 2, PING: 3, PONG: 4, FIN: 5, CLOSE: 6 } as const;
/**
 * Largest application payload per record that a RecordOpener accepts and a RecordSealer seals.
 * SPEC §5: "a 64 KiB socket read plus its frame headers fits in one record" — the mux writes a
 * 64 KiB read as 9 DAT frames (8185-byte payloads, 6-byte headers: 65,590 bytes); the rest leaves
 * room for an OPN or CREDIT written in the same turn.
 */
export const MAX_DATA = 64 * 1024 + 512;
/**
 * What a DATA record carries by default (LinkOptions.recordData): the limit before MAX_DATA grew.
 * A peer older than that change refuses a larger record as a protocol error, and the session would
 * resume and send it again without end; so larger records are sent only where every peer is known
 * to accept them (`recordData: MAX_DATA`), until all deployed peers do.
 */
export const COMPAT_DATA = 64 * 1024;
const MAX_SEALED = 1 + 8 + MAX_DATA + TAG;
/** Records up to this much plaintext are written as one buffer (copying them costs less than two more writes). */
const SMALL = 1024;

export type Record =
  | { type: typeof Rec.DATA; offset: number; data: Buffer[] }
  | { type: typeof Rec.ACK; recv: number }
  | { type: typeof Rec.PING | typeof Rec.PONG; stamp: number }
  | { type: typeof Rec.FIN; offset: number }
  | { type: typeof Rec.CLOSE };

export class RecordSealer {
  readonly #key: KeyObject;
  readonly #nonce = Buffer.alloc(12);
  /** A record's plaintext, gathered so that it is encrypted in one call; reused for every record. */
  readonly #plain = Buffer.allocUnsafeSlow(9 + MAX_DATA);
  #counter = 0;
  constructor(key: Buffer) {
    this.#key = aeadKey(key);
  }

  /**
   * One record as the pieces to write: length, ciphertext, tag (a corked socket sends them in one
   * writev). The plaintext is copied into a buffer reused for every record and encrypted in one
   * call: the pieces of a record (mux frame headers and payload views) would otherwise each become
   * a ciphertext buffer of their own, an allocation each.
   */
  #seal(length: number): Buffer[] {
    const c = cipher(this.#key, nonceInto(this.#nonce, this.#counter++));
    const body = c.update(this.#plain.subarray(0, length));
    c.final();
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(body.length + TAG, 0);
    // A small record goes to the socket as one buffer: one write and one iovec instead of three.
    if (length <= SMALL) return [Buffer.concat([len, body, c.getAuthTag()], 4 + body.length + TAG)];
    return [len, body, c.getAuthTag()];
  }

  /** A DATA record carrying `data` (at most MAX_DATA bytes) at stream position `offset`, as pieces to write back to back. */
  dataPieces(offset: number, data: Buffer[]): Buffer[] {
    const p = this.#plain;
    p[0] = Rec.DATA;
    writeU64(p, offset);
    if (totalLength(data) > MAX_DATA) throw new RangeError(`DATA record over ${MAX_DATA} bytes`);
    return this.#seal(copyInto(data, p, 9));
  }
  control(type: number, value: number): Buffer {
    const p = this.#plain;
    p[0] = type;
    if (type === Rec.PING || type === Rec.PONG) p.writeDoubleBE(value, 1);
    else writeU64(p, value);
    return this.#seal(9)[0]!; // small: one buffer
  }
  close(): Buffer {
    this.#plain[0] = Rec.CLOSE;
    return this.#seal(1)[0]!;
  }
}

function writeU64(b: Buffer, v: number): void {
  b.writeUInt32BE(Math.floor(v / 2 ** 32), 1);
  b.writeUInt32BE(v >>> 0, 5);
}
function readU64(b: Buffer): number {
  const hi = b.readUInt32BE(1);
  if (hi >= 2 ** 21) throw new LinkProtocolError('stream position beyond 2^53');
  return hi * 2 ** 32 + b.readUInt32BE(5);
}

/** A record's plaintext (one buffer: the opener decrypts a record in one call) as a Record. */
function parse(plain: Buffer): Record {
  const length = plain.length;
  const type = plain[0];
  if (type === Rec.CLOSE && length === 1) return { type: Rec.CLOSE };
  if (length < 9) throw new LinkProtocolError('record too short');
  switch (type) {
    case Rec.DATA: return { type: Rec.DATA, offset: readU64(plain), data: length > 9 ? [plain.subarray(9)] : [] };
    case Rec.ACK: if (length === 9) return { type: Rec.ACK, recv: readU64(plain) }; break;
    case Rec.PING: case Rec.PONG: if (length === 9) return { type, stamp: plain.readDoubleBE(1) }; break;
    case Rec.FIN: if (length === 9) return { type: Rec.FIN, offset: readU64(plain) }; break;
  }
  throw new LinkProtocolError(`bad record type ${type} or length ${length}`);
}

function recordLength(len: number): number {
  if (len < TAG + 1 || len > MAX_SEALED) throw new LinkProtocolError(`record length ${len} out of range`);
  return len;
}

/**
 * Incremental: bytes in, authentic records out. Holds at most one record (plus the rest of the
 * chunk it ended in), as views of the chunks it was given — no copying while a record
 * accumulates; rejects a length over the limit as soon as the 4 length bytes are in.
 */
export class RecordOpener {
  readonly #key: KeyObject;
  readonly #nonce = Buffer.alloc(12);
  #counter = 0;
  /** A record's ciphertext when it arrived split across reads, gathered to be opened in one call; reused. */
  readonly #sealed = Buffer.allocUnsafeSlow(MAX_SEALED - TAG);
  #chunks: Buffer[] = [];
  #have = 0;
  #need = -1;

  constructor(key: Buffer) {
    this.#key = aeadKey(key);
  }

  push(chunk: Buffer, onRecord: (r: Record) => void): void {
    if (chunk.length === 0) return;
    if (this.#have === 0) {
      // Nothing held from earlier reads: the records that lie whole in this chunk are opened as
      // views of it, without the lists of pieces the general path below builds (a small
      // request's records always arrive so).
      let off = 0;
      while (chunk.length - off >= 4) {
        const len = recordLength(chunk.readUInt32BE(off));
        if (chunk.length - off < 4 + len) break;
        const sealed = chunk.subarray(off + 4, off + 4 + len);
        off += 4 + len;
        onRecord(this.#openWhole(sealed));
      }
      if (off === chunk.length) return;
      chunk = chunk.subarray(off);
    }
    this.#chunks.push(chunk);
    this.#have += chunk.length;
    for (;;) {
      if (this.#need < 0) {
        if (this.#have < 4) return;
        const head = this.#chunks[0]!.length >= 4 ? this.#chunks[0]! : join(slice(this.#chunks, 0, 4));
        this.#need = recordLength(head.readUInt32BE(0));
      }
      if (this.#have < 4 + this.#need) return;
      const len = this.#need;
      const parts = this.#take(4 + len);
      this.#need = -1;
      onRecord(this.#open(parts, len));
    }
  }

  /** Removes the first n buffered bytes, as views. */
  #take(n: number): Buffer[] {
    const out: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const c = this.#chunks[0]!;
      if (c.length <= left) {
        out.push(c);
        this.#chunks.shift();
        left -= c.length;
      } else {
        out.push(c.subarray(0, left));
        this.#chunks[0] = c.subarray(left);
        left = 0;
      }
    }
    this.#have -= n;
    return out;
  }

  /** A record (ciphertext and tag, without the length) that lies in one buffer. */
  #openWhole(sealed: Buffer): Record {
    return this.#decrypt(sealed.subarray(0, sealed.length - TAG), sealed.subarray(sealed.length - TAG));
  }

  /** A record that arrived as pieces (length, ciphertext and tag spread over several reads). */
  #open(parts: Buffer[], len: number): Record {
    // One call, one plaintext buffer per record: a record split across socket reads (most are:
    // a 64 KiB read holds less than a full record) is first copied into a buffer kept for it.
    const body = slice(parts, 4, 4 + len - TAG);
    return this.#decrypt(
      body.length === 1 ? body[0]! : this.#sealed.subarray(0, copyInto(body, this.#sealed, 0)),
      join(slice(parts, 4 + len - TAG, 4 + len)),
    );
  }

  /** Opens the next record's ciphertext with its tag, under the next nonce. */
  #decrypt(ciphertext: Buffer, tag: Buffer): Record {
    const d = decipher(this.#key, nonceInto(this.#nonce, this.#counter++));
    d.setAuthTag(tag);
    const plain = d.update(ciphertext);
    try {
      d.final();
    } catch {
      throw new LinkProtocolError('record failed authentication (tampered, replayed or reordered)');
    }
    return parse(plain);
  }
}
