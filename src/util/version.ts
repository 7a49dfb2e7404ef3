import { readFileSync } from 'node:fs';
import { getAsset, isSea } from 'node:sea';

/**
 * The package's version, read from its package.json: one level above src/ in a checkout and above
 * dist/ in an installed package, so the same relative path serves both. The single executable has
 * no files beside it; its build embeds package.json as an asset (packaging/sea/build.ts).
 */
export function packageVersion(): string {
  const text = isSea() ? getAsset('package.json', 'utf8') : readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  const pkg = JSON.parse(text) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}
