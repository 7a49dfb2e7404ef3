import { InvalidArgumentError, type Command } from 'commander';
import { callApi } from '../api-client.ts';
import { apiOptions, creds, type ApiOpts } from '../common.ts';
import { bytes, cell, table } from '../format.ts';

const limitOf = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new InvalidArgumentError('expected 1-1000');
  return n;
};

/** `dk audit`: the newest audit events (admin). */
export function auditCommand(program: Command): void {
  apiOptions(program.command('audit')
    .description('show the newest audit events, newest first: grants, sessions with bytes each way, revocations (admin)'))
    .option('-n, --limit <n>', 'how many events (1-1000)', limitOf, 50)
    .addHelpText('after', `
Examples:
  dk audit -n 20
  dk audit --json | jq '.events[] | select(.event == "session") | .bytesDown'`)
    .action(async (o: ApiOpts & { limit: number }, cmd: Command) => {
      const r = await callApi(creds(o, cmd), 'GET', `api/v1/audit?limit=${o.limit}`);
      if (o.json) return void process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      const list = (r.events ?? []) as Record<string, unknown>[];
      if (list.length === 0) return void process.stdout.write('no audit events\n');
      process.stdout.write(table(['TIME', 'EVENT', 'USER', 'CLIENT', 'BACKEND', 'TARGET', 'GRANT', 'UP', 'DOWN', 'DETAIL'], list.map((e) => [
        typeof e.ts === 'string' ? e.ts.replace(/\.\d+Z$/, 'Z') : '-', cell(e.event), cell(e.user), cell(e.clientIp), cell(e.backend), cell(e.target), cell(e.grantId),
        e.bytesUp === null || e.bytesUp === undefined ? '-' : bytes(e.bytesUp), e.bytesDown === null || e.bytesDown === undefined ? '-' : bytes(e.bytesDown), cell(e.detail),
      ])));
    });
}
