import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Agent authentication (SPEC §4, seed 000 §后端鉴权): within `handshake` seconds the agent sends
 * exactly 32 bytes — a 16-byte random seed, then the first 16 bytes of
 * HMAC-SHA256(key, seed ‖ name).
 */
export const HANDSHAKE_SIZE = 32;
const SEED_SIZE = 16;

export function makeHandshake(name: string, key: string, seed: Buffer = randomBytes(SEED_SIZE)): Buffer {
  if (seed.length !== SEED_SIZE) throw new RangeError('seed must be 16 bytes');
  return Buffer.concat([seed, mac(key, seed, name)]);
}

function mac(key: string, seed: Buffer, name: string): Buffer {
  return createHmac('sha256', key).update(seed).update(name, 'utf8').digest().subarray(0, 16);
}

export interface Credential {
  name: string;
  key: string;
}

/**
 * Finds the configured backend whose key produces this MAC. Every candidate is compared in
 * constant time and the loop does not stop early, so timing does not reveal which name matched.
 */
export function verifyHandshake(msg: Buffer, backends: Iterable<Credential>): { name: string; seed: Buffer } | null {
  if (msg.length !== HANDSHAKE_SIZE) return null;
  const seed = msg.subarray(0, SEED_SIZE);
  const got = msg.subarray(SEED_SIZE);
  let found: string | null = null;
  for (const b of backends) {
    if (timingSafeEqual(mac(b.key, seed, b.name), got) && found === null) found = b.name;
  }
  return found === null ? null : { name: found, seed: Buffer.from(seed) };
}
