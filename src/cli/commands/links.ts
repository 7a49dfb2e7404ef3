import type { Command } from 'commander';
import { callApi } from '../api-client.ts';
import { apiOptions, creds, type ApiOpts } from '../common.ts';
import { cell, relative, table } from '../format.ts';

/** `dk links`: agent links and end-to-end dk connect clients with their path (GET /api/v1/links). */
export function linksCommand(program: Command): void {
  apiOptions(program.command('links')
    .description('list agent links and dk connect clients with their path (relay or direct end to end, or gateway), RTT and last path change'))
    .addHelpText('after', `
PATH is relay (through the gateway's relay, end to end encrypted), direct (peer to peer through
the NATs), connecting, or gateway (not end to end: the gateway's p2p is off or the agent is older).
CHANGES counts path changes (relay ⇄ direct); WHY is the reason of the last path decision
(docs/p2p.md §9.5).
Agent links are shown to admins only.

Examples:
  dk links
  CLIENT  USER   BACKEND  TARGET        PATH    RTT    SINCE     CHANGES  WHY
  3       alice  home     127.0.0.1:22  direct  12 ms  4m2s ago  1        path=direct via="public 198.51.100.7:40211" ms=5 …
  dk links --json | jq '.clients[] | {user, path, changes}'`)
    .action(async (o: ApiOpts, cmd: Command) => {
      const r = await callApi(creds(o, cmd), 'GET', 'api/v1/links');
      if (o.json) return void process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      const now = Date.now();
      const agents = (r.agents ?? []) as Record<string, unknown>[];
      const clients = (r.clients ?? []) as Record<string, unknown>[];
      const ms = (v: unknown): string => (typeof v === 'number' ? `${Math.round(v)} ms` : '-');
      if (agents.length > 0) {
        process.stdout.write(table(['BACKEND', 'REMOTE', 'SINCE', 'RTT', 'RESUMES', 'E2E'], agents.map((a) => [
          cell(a.backend), cell(a.remote), relative(a.since, now), ms(a.rtt_ms), cell(a.resumes), a.e2e ? 'yes' : 'no',
        ])));
        process.stdout.write('\n');
      }
      if (clients.length === 0) return void process.stdout.write(`no dk connect clients (gateway p2p: ${cell(r.p2p)})\n`);
      process.stdout.write(table(['CLIENT', 'USER', 'BACKEND', 'TARGET', 'PATH', 'RTT', 'SINCE', 'CHANGES', 'WHY'], clients.map((c) => {
        const changes = (c.changes ?? []) as { reason?: string }[];
        const why = changes.at(-1)?.reason ?? '';
        return [cell(c.id), cell(c.user), cell(c.backend), cell(c.target), cell(c.path), ms(c.rtt_ms), relative(c.since, now), cell(c.path_changes), why.length > 100 ? `${why.slice(0, 99)}…` : why];
      })));
    });
}
