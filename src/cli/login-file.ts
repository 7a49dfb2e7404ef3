import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../config/errors.ts';

/**
 * `dk login`'s stored credentials: one API address and its token (and, for an HTTPS API with a
 * self-signed certificate, the pinned certificate fingerprint), in a file only its owner may read
 * (mode 0600, in a directory of mode 0700). Every API command uses it when no --api, --token,
 * DK_API or DK_TOKEN says otherwise.
 */

/** Bigger than any real login; a larger file is not ours. */
const MAX_FILE_BYTES = 16 * 1024;

const StoredLoginSchema = z.object({
  version: z.literal(1),
  api: z.string().url(),
  token: z.string().min(1).max(200),
  /** SHA-256 fingerprint of the API's certificate, for an HTTPS API that is pinned rather than CA-signed. */
  fingerprint: z.string().min(1).max(200).optional(),
  saved_at: z.string().optional(),
}).strip();

export type StoredLogin = z.infer<typeof StoredLoginSchema>;

/** $XDG_CONFIG_HOME/doorkeeper/credentials.json, else ~/.config/doorkeeper/credentials.json. */
export function loginPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(env.HOME || homedir(), '.config');
  return join(base, 'doorkeeper', 'credentials.json');
}

/** The stored login, or null when there is none. A file others may read draws one warning. */
export function readLogin(path: string, warn: (w: string) => void): StoredLogin | null {
  let text: string;
  let mode: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new ConfigError(`${path}: not a file; remove it, then run dk login again`);
    if (st.size > MAX_FILE_BYTES) throw new ConfigError(`${path}: ${st.size} bytes is not a dk login file; remove it, then run dk login again`);
    mode = st.mode;
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`${path}: cannot read the stored login: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(`${path}: the stored login is not JSON; run dk logout, then dk login again`);
  }
  const r = StoredLoginSchema.safeParse(parsed);
  if (!r.success) throw new ConfigError(`${path}: the stored login is not valid (${r.error.issues.map((i) => `${i.path.join('.') || 'file'}: ${i.message}`).join('; ')}); run dk logout, then dk login again`);
  if ((mode & 0o077) !== 0) warn(`${path} holds an API token and others may read it (mode ${(mode & 0o777).toString(8)}); run: chmod 600 ${path}`);
  return r.data;
}

/** Writes the login atomically with mode 0600 (a temporary file in the same directory, renamed over the old one). */
export function writeLogin(path: string, login: Omit<StoredLogin, 'version' | 'saved_at'>): StoredLogin {
  const stored: StoredLogin = { version: 1, ...login, saved_at: new Date().toISOString() };
  const dir = dirname(path);
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(tmp, JSON.stringify(stored, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    chmodSync(tmp, 0o600); // whatever the umask
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new ConfigError(`${path}: cannot store the login: ${(e as Error).message}`);
  }
  return stored;
}

/** Removes the stored login; false when there was none. */
export function removeLogin(path: string): boolean {
  try {
    statSync(path);
  } catch {
    return false;
  }
  try {
    rmSync(path);
  } catch (e) {
    throw new ConfigError(`${path}: cannot remove the stored login: ${(e as Error).message}`);
  }
  return true;
}

/** The same API address, whatever trailing slash. */
export const sameApi = (a: string, b: string): boolean => a.replace(/\/+$/, '') === b.replace(/\/+$/, '');
