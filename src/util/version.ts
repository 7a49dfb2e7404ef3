import { readFileSync } from 'node:fs';

/**
 * The package's version, read from its package.json: one level above src/ in a checkout and above
 * dist/ in an installed package, so the same relative path serves both.
 */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}
