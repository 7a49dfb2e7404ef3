/**
 * The DK chunk frame (SPEC §4, seed 000 §通信协议):
 *
 *   byte 0    TT R LLLLL   TT: type (00 CLS, 01 OPN, 10 DAT, 11 CMD), R: reserved, sent as 0
 *   byte 1    LLLLLLLL     L: total frame length including the header, 13 bits, big-endian
 *   bytes 2-5 SESSION-ID   uint32 big-endian
 *   bytes 6-  payload      by type
 */
export const FrameType = { CLS: 0, OPN: 1, DAT: 2, CMD: 3 } as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export const HEADER_SIZE = 6;
/** "6 ≤ L ≤ 8191". The seed says 8192, but 13 bits hold at most 8191 (SPEC §4). */
export const MAX_FRAME = 8191;
export const MAX_DAT_PAYLOAD = MAX_FRAME - HEADER_SIZE; // 8185
/**
 * BIG DAT frames (extension, negotiated with Feature.BIG; SPEC §5 "between two DoorKeeper peers a
 * negotiated extension may carry session data in frames larger than the seed's 8185 bytes"):
 *
 *   byte 0    10 1 LLLLL    DAT with R set: the length has 21 bits,
 *   bytes 1-2 LLLLLLLL ×2   big-endian, the whole frame's length including this 7-byte header
 *   bytes 3-6 SESSION-ID    uint32 big-endian
 *   bytes 7-  payload       1..65536 bytes of session data
 *
 * A 64 KiB socket read travels as one frame instead of eight. R is set on no other frame, and a
 * receiver that did not offer BIG refuses it.
 */
export const BIG_HEADER_SIZE = 7;
export const MAX_BIG_PAYLOAD = 64 * 1024;
export const MAX_BIG_FRAME = BIG_HEADER_SIZE + MAX_BIG_PAYLOAD;
/** OPN payload: port (2) + IPv4 (4) or IPv6 (16): L is 12 or 24, anything else is an error. */
export const OPN_V4_LENGTH = HEADER_SIZE + 2 + 4;
export const OPN_V6_LENGTH = HEADER_SIZE + 2 + 16;
/** A CMD frame needs at least its command byte. */
export const CMD_MIN_LENGTH = HEADER_SIZE + 1;
export const MAX_CMD_PARAMS = MAX_FRAME - CMD_MIN_LENGTH; // 8184

export interface ClsFrame {
  readonly type: typeof FrameType.CLS;
  readonly session: number;
}
export interface OpnFrame {
  readonly type: typeof FrameType.OPN;
  readonly session: number;
  readonly port: number;
  /** 4 or 16 raw address bytes. */
  readonly address: Uint8Array;
}
export interface DatFrame {
  readonly type: typeof FrameType.DAT;
  readonly session: number;
  readonly data: Buffer;
}
export interface CmdFrame {
  readonly type: typeof FrameType.CMD;
  /** For commands SESSION-ID carries a correlation id (0 for PING), SPEC §4. */
  readonly id: number;
  readonly command: number;
  readonly params: Buffer;
}
export type Frame = ClsFrame | OpnFrame | DatFrame | CmdFrame;
