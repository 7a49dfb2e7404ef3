import { FrameLengthError, PayloadError } from './errors.ts';
import {
  BIG_HEADER_SIZE, CMD_MIN_LENGTH, FrameType, HEADER_SIZE, MAX_BIG_PAYLOAD, MAX_CMD_PARAMS, MAX_DAT_PAYLOAD, type Frame,
} from './frame.ts';


/** Writes a 6-byte header at `offset`; `length` is the whole frame's length. */
export function writeHeader(buf: Buffer, offset: number, type: FrameType, length: number, session: number): void {
  // byte 0: TT R LLLLL — R (bit 5) is reserved and sent as 0.
  buf[offset] = (type << 6) | ((length >>> 8) & 0x1f);
  buf[offset + 1] = length & 0xff;
  buf.writeUInt32BE(session >>> 0, offset + 2);
}

export function encodeCls(session: number): Buffer {
  const b = Buffer.allocUnsafe(HEADER_SIZE);
  writeHeader(b, 0, FrameType.CLS, HEADER_SIZE, session);
  return b;
}

export function encodeOpn(session: number, port: number, address: Uint8Array): Buffer {
  if (address.length !== 4 && address.length !== 16) throw new PayloadError(`OPN address must be 4 or 16 bytes, got ${address.length}`);
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new PayloadError(`OPN port out of range: ${port}`);
  const length = HEADER_SIZE + 2 + address.length;
  const b = Buffer.allocUnsafe(length);
  writeHeader(b, 0, FrameType.OPN, length, session);
  b.writeUInt16BE(port, HEADER_SIZE);
  b.set(address, HEADER_SIZE + 2);
  return b;
}

export function encodeDat(session: number, data: Uint8Array): Buffer {
  if (data.length > MAX_DAT_PAYLOAD) throw new FrameLengthError(FrameType.DAT, HEADER_SIZE + data.length, 'payload over 8185 bytes');
  const b = Buffer.allocUnsafe(HEADER_SIZE + data.length);
  writeHeader(b, 0, FrameType.DAT, b.length, session);
  b.set(data, HEADER_SIZE);
  return b;
}

/**
 * The headers of the DAT frames that carry `length` bytes (8185 per frame, or 64 KiB per BIG
 * frame), back to back, for a caller that writes header and payload views (writev, or a corked
 * stream) instead of copying the payload into frames.
 */
export function encodeDatHeaders(session: number, length: number, big = false): Buffer {
  const size = big ? BIG_HEADER_SIZE : HEADER_SIZE;
  const max = big ? MAX_BIG_PAYLOAD : MAX_DAT_PAYLOAD;
  const frames = Math.max(1, Math.ceil(length / max));
  const out = Buffer.allocUnsafe(frames * size);
  for (let i = 0; i < frames; i++) {
    const n = Math.min(max, length - i * max);
    if (big) writeBigHeader(out, i * size, size + n, session);
    else writeHeader(out, i * size, FrameType.DAT, size + n, session);
  }
  return out;
}

/** A BIG DAT frame's 7-byte header (frame.ts): type DAT, R set, 21-bit length, session id. */
function writeBigHeader(buf: Buffer, offset: number, length: number, session: number): void {
  buf[offset] = (FrameType.DAT << 6) | 0x20 | ((length >>> 16) & 0x1f);
  buf[offset + 1] = (length >>> 8) & 0xff;
  buf[offset + 2] = length & 0xff;
  buf.writeUInt32BE(session >>> 0, offset + 3);
}

/** One BIG DAT frame (tests and codecs; the mux writes headers and payload views). */
export function encodeBigDat(session: number, data: Uint8Array): Buffer {
  if (data.length < 1 || data.length > MAX_BIG_PAYLOAD) throw new FrameLengthError(FrameType.DAT, BIG_HEADER_SIZE + data.length, 'BIG payload must be 1-65536 bytes');
  const b = Buffer.allocUnsafe(BIG_HEADER_SIZE + data.length);
  writeBigHeader(b, 0, b.length, session);
  b.set(data, BIG_HEADER_SIZE);
  return b;
}

export function encodeCmd(id: number, command: number, params: Uint8Array = Buffer.alloc(0)): Buffer {
  if (!Number.isInteger(command) || command < 0 || command > 0xff) throw new PayloadError(`command out of range: ${command}`);
  if (params.length > MAX_CMD_PARAMS) throw new FrameLengthError(FrameType.CMD, CMD_MIN_LENGTH + params.length, 'parameters over 8184 bytes');
  const b = Buffer.allocUnsafe(CMD_MIN_LENGTH + params.length);
  writeHeader(b, 0, FrameType.CMD, b.length, id);
  b[HEADER_SIZE] = command;
  b.set(params, CMD_MIN_LENGTH);
  return b;
}

export function encodeFrame(f: Frame): Buffer {
  switch (f.type) {
    case FrameType.CLS: return encodeCls(f.session);
    case FrameType.OPN: return encodeOpn(f.session, f.port, f.address);
    case FrameType.DAT: return encodeDat(f.session, f.data);
    case FrameType.CMD: return encodeCmd(f.id, f.command, f.params);
  }
}
