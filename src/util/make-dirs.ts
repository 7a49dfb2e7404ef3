import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * `mkdir -p`: makes `dir` and its missing parents; a `dir` that exists must be a directory.
 *
 * Not `mkdirSync(dir, { recursive: true })`: Node's own loop retries for ever when the kernel says
 * ENOENT for a path whose parent exists, which is what /proc and /sys say (`/proc/x` spun a CPU at
 * 85% and never returned). Here each level is made at most once; a second ENOENT is an error.
 */
export function makeDirs(dir: string, mode = 0o700): void {
  try {
    mkdirSync(dir, { mode });
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if (statSync(dir).isDirectory()) return;
      throw Object.assign(new Error(`${dir} exists and is not a directory`), { code: 'EEXIST', path: dir });
    }
    const parent = dirname(dir);
    if (code !== 'ENOENT' || parent === dir) throw e;
    makeDirs(parent, mode);
  }
  mkdirSync(dir, { mode });
}
