import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeDirs } from '../util/make-dirs.ts';
import { generateKeyPair, privateFromRaw, privateRaw, type KeyPair } from './crypto.ts';

/**
 * A static X25519 key — the gateway's (`link_key`, SPEC §5) or an agent's for end-to-end links
 * (`agent_link_key`, docs/p2p.md §9): made on first start, kept (mode 0600) in the data dir.
 */
export function loadOrCreateStaticKey(dataDir: string, file = 'link_key'): KeyPair {
  const path = join(dataDir, file);
  if (existsSync(path)) {
    const raw = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64url');
    if (raw.length !== 32) throw new Error(`${path} does not hold a 32-byte key; move it away to make a new one`);
    return privateFromRaw(raw);
  }
  makeDirs(dataDir, 0o700);
  const kp = generateKeyPair();
  writeFileSync(path, privateRaw(kp.privateKey).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
  return kp;
}

export const encodeKey = (raw: Buffer): string => raw.toString('base64url');
export function decodeKey(text: string): Buffer {
  const raw = Buffer.from(text.trim(), 'base64url');
  if (raw.length !== 32) throw new Error('a gateway key is 43 base64url characters (32 bytes); print it with `dk pubkey`');
  return raw;
}
