import type { Command } from 'commander';
import { callApi } from '../api-client.ts';
import { apiOptions, creds, type ApiOpts } from '../common.ts';
import { cell, relative, table } from '../format.ts';

/** `dk backends`: the backends the user may use, and whether their agents are online. */
export function backendsCommand(program: Command): void {
  apiOptions(program.command('backends')
    .description('list the backends you may use: online or not, since when, link, RTT, live sessions'))
    .addHelpText('after', `
Example:
  dk backends
  NAME  STATUS  SINCE      LINK       RTT   SESSIONS  EXPOSES
  home  online  5m02s ago  encrypted  3 ms  1         0`)
    .action(async (o: ApiOpts, cmd: Command) => {
      const r = await callApi(creds(o, cmd), 'GET', 'api/v1/backends');
      if (o.json) return void process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      const list = (r.backends ?? []) as Record<string, unknown>[];
      if (list.length === 0) return void process.stdout.write('no backends you may use\n');
      const now = Date.now();
      const withRemote = list.some((b) => typeof b.remote === 'string');
      const header = ['NAME', 'STATUS', 'SINCE', 'LINK', 'RTT', 'SESSIONS', 'EXPOSES', ...(withRemote ? ['REMOTE'] : [])];
      process.stdout.write(table(header, list.map((b) => [
        cell(b.name), b.online ? 'online' : 'offline', relative(b.since, now),
        b.encrypted === true ? 'encrypted' : b.encrypted === false ? 'plain' : '-',
        typeof b.rtt_ms === 'number' ? `${Math.round(b.rtt_ms)} ms` : '-', cell(b.sessions),
        String(Array.isArray(b.exposes) ? b.exposes.length : 0), ...(withRemote ? [cell(b.remote)] : []),
      ])));
    });
}
