import { PayloadError } from './errors.ts';
import { MAX_CMD_PARAMS } from './frame.ts';
import { packParamBlocks } from './param-blocks.ts';

/**
 * CMD codes. 0 and 1 are the seed's (SPEC §4); codes ≥ 2 are DoorKeeper extensions, used only
 * after both sides sent HELLO, so a peer that speaks only the seed protocol still works.
 * For CREDIT and FIN the SESSION-ID field carries the session the command is about.
 */
export const Command = {
  PING: 0,
  PORT_QUERY: 1,
  HELLO: 2,
  PONG: 3,
  CREDIT: 4,
  FIN: 5,
  EXPOSE: 6,
  /** Agent → gateway after HELLO (feature ALLOWLIST): what the agent will dial (allowlist.ts). */
  ALLOWLIST: 7,
  /**
   * Gateway → agent inside the encrypted link, in place of HELLO: the agent handshake failed (no
   * backend's key matches). Sent before any negotiation, then the link session ends; an agent that
   * does not know it ignores it like any unknown command and sees the close (allowlist.ts has the codec).
   */
  REFUSED: 8,
  /** Agent → gateway after HELLO (feature INFO): the agent's software version (agent-info.ts). */
  AGENT_INFO: 9,
  /**
   * Both ways after HELLO (feature E2E): one JSON message of the end-to-end path (src/p2p/e2e-messages.ts):
   * the agent's static link key; the gateway's ticket key, relay joins and punches for dk connect clients.
   */
  E2E: 10,
} as const;

/** HELLO feature bits. The features in use are the intersection of both sides' sets. */
export const Feature = {
  /** Per-session credit windows (CREDIT) and half-close (FIN). */
  FLOW: 1,
  /** PING carries an 8-byte timestamp, answered by PONG: RTT measurement. */
  PONG: 2,
  /** Static tunnels published by the agent (EXPOSE). */
  EXPOSE: 4,
  /** DAT frames of up to 64 KiB of data (frame.ts, BIG_HEADER_SIZE). */
  BIG: 8,
  /** The agent tells the gateway its allowlist (ALLOWLIST), so the API can refuse what the agent would. */
  ALLOWLIST: 16,
  /** The agent tells the gateway its version (AGENT_INFO), shown by the API and the dashboard. */
  INFO: 32,
  /** dk connect runs its link end to end with the agent, relayed or direct (E2E; docs/p2p.md §9). */
  E2E: 64,
} as const;
/**
 * What DoorKeeper offers by default. BIG is understood but not offered: in a full bench run it
 * made the plain link's single stream 0.78 × and dk connect's 0.70 × the code before it, at 1.17 ×
 * and 1.48 × the CPU per GiB, for 1.02 × on the encrypted link (docs/performance.md).
 */
export const ALL_FEATURES = Feature.FLOW | Feature.PONG | Feature.EXPOSE | Feature.ALLOWLIST | Feature.INFO | Feature.E2E;
export const PROTOCOL_VERSION = 1;

export interface Hello {
  version: number;
  features: number;
  /** Receive window per session in bytes, granted to the peer at OPN time. */
  window: number;
}

export function encodeHello(h: Hello): Buffer {
  const b = Buffer.allocUnsafe(9);
  b[0] = h.version;
  b.writeUInt32BE(h.features >>> 0, 1);
  b.writeUInt32BE(h.window >>> 0, 5);
  return b;
}
/** Extra trailing bytes are allowed: a later version may append fields. */
export function decodeHello(p: Buffer): Hello {
  if (p.length < 9) throw new PayloadError(`HELLO needs 9 bytes, got ${p.length}`);
  const window = p.readUInt32BE(5);
  if (window < 1024) throw new PayloadError(`HELLO window ${window} below 1024`);
  return { version: p[0]!, features: p.readUInt32BE(1), window };
}

export function encodeCredit(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}
export function decodeCredit(p: Buffer): number {
  if (p.length !== 4) throw new PayloadError(`CREDIT needs 4 bytes, got ${p.length}`);
  const n = p.readUInt32BE(0);
  if (n === 0) throw new PayloadError('CREDIT of 0');
  return n;
}

export function encodePortQuery(port: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(port, 0);
  return b;
}
export function decodePortQuery(p: Buffer): number {
  if (p.length !== 2) throw new PayloadError(`PORT QUERY request needs 2 bytes, got ${p.length}`);
  return p.readUInt16BE(0);
}

/** PORT QUERY answer flags (byte 7 of the frame). */
export const ScanFlag = { LAST: 1, REFUSED: 2, TRUNCATED: 4 } as const;

export interface ScanReply {
  flags: number;
  hosts: Uint8Array[];
}

/**
 * Answer frames: flags (1 byte), then entries of (length 4|16, address bytes). Splits a host list
 * into as many parameter blocks as needed; the last carries ScanFlag.LAST.
 */
export function encodeScanReplies(hosts: readonly Uint8Array[], flags = 0): Buffer[] {
  return packParamBlocks(hosts.map((h) => Buffer.concat([Buffer.from([h.length]), h])), flags, ScanFlag.LAST);
}

export function decodeScanReply(p: Buffer): ScanReply {
  if (p.length < 1) throw new PayloadError('PORT QUERY answer needs a flags byte');
  const hosts: Uint8Array[] = [];
  let off = 1;
  while (off < p.length) {
    const len = p[off]!;
    if (len !== 4 && len !== 16) throw new PayloadError(`PORT QUERY entry length ${len}`);
    if (off + 1 + len > p.length) throw new PayloadError('PORT QUERY entry truncated');
    hosts.push(p.subarray(off + 1, off + 1 + len));
    off += 1 + len;
  }
  return { flags: p[0]!, hosts };
}

export interface Cidr {
  address: Uint8Array;
  prefix: number;
}

export interface ExposeRequest {
  remotePort: number;
  targetPort: number;
  target: Uint8Array;
  /** Source networks allowed to connect; empty = public. */
  allow: Cidr[];
}

/** EXPOSE request: remote port, target port (u16 each), target (len + bytes), count, then (prefix, len, bytes) per CIDR. */
export function encodeExpose(r: ExposeRequest): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.allocUnsafe(5);
  head.writeUInt16BE(r.remotePort, 0);
  head.writeUInt16BE(r.targetPort, 2);
  head[4] = r.target.length;
  parts.push(head, Buffer.from(r.target), Buffer.from([r.allow.length]));
  for (const c of r.allow) parts.push(Buffer.from([c.prefix, c.address.length]), Buffer.from(c.address));
  const b = Buffer.concat(parts);
  if (b.length > MAX_CMD_PARAMS) throw new PayloadError('EXPOSE request too long');
  return b;
}

export function decodeExpose(p: Buffer): ExposeRequest {
  const fail = (w: string): never => { throw new PayloadError(`EXPOSE: ${w}`); };
  if (p.length < 5) fail('too short');
  const remotePort = p.readUInt16BE(0);
  const targetPort = p.readUInt16BE(2);
  const tlen = p[4]!;
  if (tlen !== 4 && tlen !== 16) fail(`target length ${tlen}`);
  let off = 5;
  if (off + tlen + 1 > p.length) fail('truncated target');
  const target = p.subarray(off, off + tlen);
  off += tlen;
  const count = p[off++]!;
  const allow: Cidr[] = [];
  for (let i = 0; i < count; i++) {
    if (off + 2 > p.length) fail('truncated CIDR');
    const prefix = p[off]!;
    const len = p[off + 1]!;
    if (len !== 4 && len !== 16) fail(`CIDR length ${len}`);
    if (prefix > len * 8) fail(`prefix ${prefix} too long`);
    if (off + 2 + len > p.length) fail('truncated CIDR address');
    allow.push({ prefix, address: p.subarray(off + 2, off + 2 + len) });
    off += 2 + len;
  }
  if (off !== p.length) fail('trailing bytes');
  return { remotePort, targetPort, target, allow };
}

/** REFUSED reasons (the gateway's answer to a failed agent handshake inside the encrypted link). */
export const RefusedReason = { BAD_KEY: 1 } as const;

export function encodeRefused(reason: number, message: string): Buffer {
  return Buffer.concat([Buffer.from([reason]), Buffer.from(message.slice(0, 1000), 'utf8')]);
}
export function decodeRefused(p: Buffer): { reason: number; message: string } {
  if (p.length < 1) throw new PayloadError('REFUSED needs a reason byte');
  return { reason: p[0]!, message: p.subarray(1, 1001).toString('utf8') };
}

export const ExposeStatus = { OK: 0, REFUSED: 1, IN_USE: 2 } as const;

export function encodeExposeReply(status: number, message: string): Buffer {
  return Buffer.concat([Buffer.from([status]), Buffer.from(message.slice(0, 1000), 'utf8')]);
}
export function decodeExposeReply(p: Buffer): { status: number; message: string } {
  if (p.length < 1) throw new PayloadError('EXPOSE reply needs a status byte');
  return { status: p[0]!, message: p.subarray(1).toString('utf8') };
}
