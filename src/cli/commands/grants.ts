import type { Command } from 'commander';
import { callApi } from '../api-client.ts';
import { apiOptions, creds, type ApiOpts } from '../common.ts';
import { cell, relative, table } from '../format.ts';

const target = (g: Record<string, unknown>): string => `${cell(g.backend)} ${cell(g.host)}:${cell(g.port)}`;

/** `dk grants` and `dk revoke`: grants in force (yours; an admin's: all) and ending one. */
export function grantCommands(program: Command): void {
  apiOptions(program.command('grants')
    .description('list the grants in force (yours; with an admin token, everyone\'s)'))
    .addHelpText('after', `
IDLE CLOSE is when an unused grant ends (each use moves it on); EXPIRES is its hard end.

Examples:
  dk grants
  GRANT             USER   CLIENT       ACCESS PORT  TARGET             SESSIONS  IDLE CLOSE  EXPIRES
  3a9bab0f48a084b6  alice  203.0.113.7  35358        home 127.0.0.1:22  1         in 9m58s    in 59m58s
  dk grants --json | jq -r '.grants[].grant_id'`)
    .action(async (o: ApiOpts, cmd: Command) => {
      const r = await callApi(creds(o, cmd), 'GET', 'api/v1/grants');
      if (o.json) return void process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      const list = (r.grants ?? []) as Record<string, unknown>[];
      if (list.length === 0) return void process.stdout.write('no grants in force\n');
      const now = Date.now();
      process.stdout.write(table(['GRANT', 'USER', 'CLIENT', 'ACCESS PORT', 'TARGET', 'SESSIONS', 'IDLE CLOSE', 'EXPIRES'], list.map((g) => [
        cell(g.grant_id), cell(g.user), cell(g.client_ip), cell(g.access_port), target(g), cell(g.active_sessions),
        relative(g.start_before, now), relative(g.expires_at, now),
      ])));
    });

  apiOptions(program.command('revoke')
    .description('end a grant now: its sessions are closed, and its access port too if nothing else uses it')
    .argument('<grant>', 'grant id (from dk grants)'))
    .addHelpText('after', `
Example:
  dk revoke 3a9bab0f48a084b6`)
    .action(async (id: string, o: ApiOpts, cmd: Command) => {
      const r = await callApi(creds(o, cmd), 'DELETE', `api/v1/grants/${encodeURIComponent(id)}`);
      if (o.json) return void process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      const g = (r.revoked ?? {}) as Record<string, unknown>;
      process.stdout.write(`revoked grant ${cell(g.grant_id)}: ${cell(g.client_ip)} on access port ${cell(g.access_port)} → ${target(g)}\n`);
    });
}
