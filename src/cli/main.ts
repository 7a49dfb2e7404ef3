#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/errors.ts';
import { packageVersion } from '../util/version.ts';
import { ApiClientError } from './api-client.ts';
import { accessCommands } from './commands/access.ts';
import { agentCommand } from './commands/agent.ts';
import { auditCommand } from './commands/audit.ts';
import { backendsCommand } from './commands/backends.ts';
import { connectCommand } from './commands/connect.ts';
import { gatewayCommand } from './commands/gateway.ts';
import { grantCommands } from './commands/grants.ts';
import { initCommand } from './commands/init.ts';
import { loginCommands } from './commands/login.ts';
import { pubkeyCommand } from './commands/pubkey.ts';
import { rendezvousCommands } from './commands/rendezvous.ts';
import { sessionCommands } from './commands/sessions.ts';
import { linksCommand } from './commands/links.ts';
import { userCommands } from './commands/user.ts';
import { usersCommands } from './commands/users.ts';

/** The `dk` command line: one file per command in ./commands, registered here in --help order. */
const program = new Command('dk')
  .description('DoorKeeper: controlled access to hosts behind NAT.\nRun `dk gateway` on a public host, `dk agent` inside the private network, `dk access` to get a port.')
  .version(packageVersion())
  // Usage errors end as exit code 2 like every configuration error (commander's own is 1), on one
  // line: commander's message, with a "did you mean" on the same line, and where to look next.
  .exitOverride()
  .configureOutput({ outputError: (text, write) => write(`dk: ${text.replace(/^error: /, '').trim().split('\n').join(' ')} (run with --help for usage)\n`) });

gatewayCommand(program);
agentCommand(program);
accessCommands(program);
pubkeyCommand(program);
connectCommand(program);
initCommand(program);
userCommands(program);
rendezvousCommands(program);
loginCommands(program);
backendsCommand(program);
grantCommands(program);
sessionCommands(program);
linksCommand(program);
auditCommand(program);
usersCommands(program);

// `dk grants | head -1`: a reader that has seen enough is not an error. Not for `dk connect`,
// whose --stdio mode opens fd 1 itself (src/connect/stdio.ts): process.stdout stays unmade there.
if (process.argv[2] !== 'connect') process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(0); else throw e; });

// No top-level await: the single executable (packaging/sea/build.ts) bundles this file as CommonJS,
// the only format Node 24 runs there.
program.parseAsync(process.argv).catch((e: unknown) => process.exit(exitCodeFor(e)));

/**
 * Prints why the command failed, on one line of stderr, and returns its exit code (README lists
 * them): 2 for usage and configuration, 3-5 for the API, 1 for anything unexpected.
 */
function exitCodeFor(e: unknown): number {
  if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2; // commander printed the message (or the help)
  if (e instanceof ConfigError || e instanceof ApiClientError) {
    process.stderr.write(`dk: ${e.message}\n`);
    return e.exitCode;
  }
  const err = e as Error;
  if (process.env.DK_DEBUG) process.stderr.write(`${err.stack ?? String(e)}\n`);
  else process.stderr.write(`dk: ${err.message ?? String(e)} (an unexpected error; DK_DEBUG=1 prints where it came from)\n`);
  return 1;
}
