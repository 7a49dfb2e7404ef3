import { isSea } from 'node:sea';

/**
 * How the user runs dk here, for the commands the CLI prints for them: `npm run dk --` in a
 * checkout (its TypeScript sources want the Node 24 that npm puts first on PATH), plain `dk` in an
 * installed package (compiled JavaScript) and in the single executable.
 */
export function dkCommand(): string {
  return !isSea() && import.meta.url.endsWith('.ts') ? 'npm run dk --' : 'dk';
}
