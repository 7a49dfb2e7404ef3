import type { Command } from 'commander';
import { callApi } from '../api-client.ts';
import { apiOptions, creds, type ApiOpts } from '../common.ts';
import { bytes, cell, relative, table } from '../format.ts';

/** `dk sessions` and `dk kill`: live tunnelled connections (yours; an admin's: all) and ending one. */
export function sessionCommands(program: Command): void {
  apiOptions(program.command('sessions')
    .description('list live tunnelled connections with bytes each way (yours; with an admin token, everyone\'s)'))
    .addHelpText('after', `
KIND is grant (through an access port), connect (dk connect) or expose (a static tunnel).
UP is client to target, DOWN target to client.

Examples:
  dk sessions
  SESSION        KIND     USER   CLIENT             TARGET             STARTED    UP       DOWN
  home.1a2b3c4d  connect  alice  203.0.113.7:51234  home 127.0.0.1:22  2m10s ago  4.1 KiB  1.2 MiB
  dk sessions --json | jq '.sessions[] | select(.user == "alice") | .id'`)
    .action(async (o: ApiOpts, cmd: Command) => {
      const r = await callApi(creds(o, cmd), 'GET', 'api/v1/sessions');
      if (o.json) return void process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      const list = (r.sessions ?? []) as Record<string, unknown>[];
      if (list.length === 0) return void process.stdout.write('no live sessions\n');
      const now = Date.now();
      process.stdout.write(table(['SESSION', 'KIND', 'USER', 'CLIENT', 'TARGET', 'STARTED', 'UP', 'DOWN'], list.map((s) => [
        cell(s.id), cell(s.kind), cell(s.user), cell(s.client), `${cell(s.backend)} ${cell(s.target)}`, relative(s.started_at, now), bytes(s.bytes_up), bytes(s.bytes_down),
      ])));
    });

  apiOptions(program.command('kill')
    .description('close a live session (both its ends) now; its grant stays')
    .argument('<session>', 'session id (from dk sessions)'))
    .addHelpText('after', `
Example:
  dk kill home.1a2b3c4d`)
    .action(async (id: string, o: ApiOpts, cmd: Command) => {
      const r = await callApi(creds(o, cmd), 'DELETE', `api/v1/sessions/${encodeURIComponent(id)}`);
      if (o.json) return void process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      const s = (r.killed ?? {}) as Record<string, unknown>;
      process.stdout.write(`killed session ${cell(s.id)}: ${cell(s.client)} → ${cell(s.backend)} ${cell(s.target)} after ${bytes(s.bytes_up)} up, ${bytes(s.bytes_down)} down\n`);
    });
}
