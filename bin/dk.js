#!/usr/bin/env node
// The `dk` command. A checkout (it has src/) runs the TypeScript sources, even after `npm run
// build` left a dist/ behind that may be older than them (Node >= 22.18 strips types; run through
// `npm run dk --` to get Node 24). An installed package has no src/ and runs the compiled dist/.
// The relaying commands (gateway, agent, connect) restart once with the Node flags and malloc
// settings they need (src/util/process-tuning.ts). Doing it here, before the CLI's modules load,
// keeps the restart to a bare Node start; src/cli/main.ts does it too when run directly.
import { existsSync } from 'node:fs';

const built = !existsSync(new URL('../src/cli/main.ts', import.meta.url));

// The oldest Node that runs dk, per major version: node:sqlite without a flag (22.13, 23.4) and,
// for a checkout's TypeScript sources, type stripping without a flag (22.18, 23.6). Older Nodes
// would die on the first import with a raw ERR_UNKNOWN_BUILTIN_MODULE or ERR_UNKNOWN_FILE_EXTENSION.
const oldest = built ? { 22: 13, 23: 4 } : { 22: 18, 23: 6 };
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < 22 || minor < (oldest[major] ?? 0)) {
  const need = `${built ? 'Node.js 22.13' : 'Node.js 22.18'} or newer`;
  const hint = built ? 'install a newer Node.js, or use the single-file dk (docs/operations.md)' : 'run it as `npm run dk -- …`, which uses the Node 24 that `npm ci` installed';
  process.stderr.write(`dk: needs ${need}, and ${process.execPath} is ${process.version}: ${hint}\n`);
  process.exit(2);
}
// Node 22 and 23 warn on every start that node:sqlite is experimental; dk relies on it knowingly,
// so that one warning is dropped and every other warning is printed as usual.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => {
  if (!String(warning).startsWith('SQLite is an experimental feature')) emitWarning(warning, ...rest);
};

const from = (path) => new URL(`../${built ? 'dist' : 'src'}/${path}.${built ? 'js' : 'ts'}`, import.meta.url).href;
if (['gateway', 'agent', 'connect'].includes(process.argv[2] ?? '')) {
  // The path is chosen at run time (dist or src), so the linter cannot type the module.
  // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment
  const tuning = await import(from('util/process-tuning'));
  // eslint-disable-next-line @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-member-access
  tuning.tuneProcessForRelaying();
}
await import(from('cli/main'));
