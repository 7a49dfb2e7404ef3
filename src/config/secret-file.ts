import { readFileSync, statSync } from 'node:fs';
import { ConfigError } from './errors.ts';

/**
 * Reads a secret (a key or token) from a file, so it need not be on the command line, where every
 * local user can read it (docs/security.md). The whole file is the secret, less its trailing line
 * ending. `flag` names the option in errors; `warn` hears, once, about a file others may read.
 */
export function readSecretFile(path: string, flag: string, warn: (message: string) => void): string {
  let text: string;
  let mode: number;
  try {
    text = readFileSync(path, 'utf8');
    mode = statSync(path).mode;
  } catch (e) {
    throw new ConfigError(`${flag} ${path}: cannot read it: ${(e as Error).message}`);
  }
  const secret = text.replace(/[\r\n]+$/, '');
  if (secret.length === 0) throw new ConfigError(`${flag} ${path}: the file is empty; put the secret in it (one line)`);
  if (secret.includes('\n')) throw new ConfigError(`${flag} ${path}: the file has more than one line; a secret file holds the secret alone`);
  if ((mode & 0o044) !== 0) {
    warn(`${flag} ${path} is readable by ${(mode & 0o040) !== 0 ? 'its group' : ''}${(mode & 0o044) === 0o044 ? ' and ' : ''}${(mode & 0o004) !== 0 ? 'every local user' : ''} (mode ${(mode & 0o777).toString(8)}); run: chmod 600 ${path}`);
  }
  return secret;
}

/** `--x VALUE` or `--x-file FILE`, at most one of them; undefined when neither is given. */
export function secretFlag(value: string | undefined, file: string | undefined, flag: string, warn: (message: string) => void): string | undefined {
  if (value !== undefined && file !== undefined) throw new ConfigError(`give ${flag} or ${flag}-file, not both`);
  return file !== undefined ? readSecretFile(file, `${flag}-file`, warn) : value;
}
