import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * A `node` older than dk runs on (before 22.13): the machine's own, found on PATH outside npm
 * scripts or in the usual places; undefined when there is none.
 */
export function oldNode(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter).concat('/usr/bin', '/usr/local/bin')) {
    const file = join(dir, 'node');
    if (!existsSync(file)) continue;
    const r = spawnSync(file, ['-p', 'process.versions.node'], { encoding: 'utf8' });
    const [major = 0, minor = 0] = r.stdout.trim().split('.').map(Number);
    if (r.status === 0 && (major < 22 || (major === 22 && minor < 13))) return file;
  }
  return undefined;
}
