import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ed25519FromPem, generateEd25519, type Ed25519Pair } from '../p2p/ticket.ts';
import { makeDirs } from '../util/make-dirs.ts';

/**
 * The gateway's Ed25519 key that signs end-to-end tickets (docs/p2p.md §9): made on first start,
 * kept (PKCS#8 PEM, mode 0600) as `ticket_key` in the data dir. Agents learn its public half over
 * their pinned link, so a new key only means new tickets.
 */
export function loadOrCreateTicketKey(dataDir: string): Ed25519Pair {
  const path = join(dataDir, 'ticket_key');
  if (existsSync(path)) {
    try {
      return ed25519FromPem(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new Error(`${path} does not hold an Ed25519 key (${(e as Error).message}); move it away to make a new one`);
    }
  }
  makeDirs(dataDir, 0o700);
  const pair = generateEd25519();
  writeFileSync(path, pair.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
  return pair;
}
