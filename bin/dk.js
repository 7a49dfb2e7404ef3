#!/usr/bin/env node
// The `dk` command. A checkout (it has src/) runs the TypeScript sources, even after `npm run
// build` left a dist/ behind that may be older than them (Node >= 22.18 strips types; run through
// `npm run dk --` to get Node 24). An installed package has no src/ and runs the compiled dist/.
// The relaying commands (gateway, agent, connect) restart once with the Node flags and malloc
// settings they need (src/util/process-tuning.ts). Doing it here, before the CLI's modules load,
// keeps the restart to a bare Node start; src/cli/main.ts does it too when run directly.
import { existsSync } from 'node:fs';

const built = !existsSync(new URL('../src/cli/main.ts', import.meta.url));
const from = (path) => new URL(`../${built ? 'dist' : 'src'}/${path}.${built ? 'js' : 'ts'}`, import.meta.url).href;
if (['gateway', 'agent', 'connect'].includes(process.argv[2] ?? '')) {
  // The path is chosen at run time (dist or src), so the linter cannot type the module.
  // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment
  const tuning = await import(from('util/process-tuning'));
  // eslint-disable-next-line @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-member-access
  tuning.tuneProcessForRelaying();
}
await import(from('cli/main'));
