import { closeSync, openSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../config/errors.ts';
import { makeDirs } from '../util/make-dirs.ts';

/** What each errno means for a data dir, in words that say what to change. */
const WHY: Record<string, string> = {
  ENOTDIR: 'a part of that path is a file, not a directory',
  EEXIST: 'it is a file, not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOENT: 'that place does not accept new files or directories (e.g. /proc or /sys)',
  ENOSPC: 'no space left on the device',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the path is too long',
};

/** A failure to make or write the data dir, as a ConfigError that says why and what to do. */
export function dataDirError(dir: string, e: unknown): ConfigError {
  const err = e as NodeJS.ErrnoException;
  const why = (err.code && WHY[err.code]) ?? err.message;
  return new ConfigError(`data_dir ${dir}: ${why} (${err.code ?? 'error'}); give --data-dir (or data_dir) a directory this user can write`);
}

/**
 * Makes the gateway's data dir (mode 0700) if it is missing and checks that files can be created
 * in it, so a bad data_dir is one ConfigError before anything else starts.
 */
export function ensureDataDir(dir: string): void {
  try {
    makeDirs(dir, 0o700);
    const probe = join(dir, `.dk-write-test-${process.pid}`);
    closeSync(openSync(probe, 'wx', 0o600));
    unlinkSync(probe);
  } catch (e) {
    throw dataDirError(dir, e);
  }
}
