import type { Command } from 'commander';
import qrcode from 'qrcode-terminal';
import { callApi } from '../api-client.ts';
import { apiOptions, creds, type ApiOpts } from '../common.ts';
import { cell, table } from '../format.ts';

const split = (s: string): string[] => s.split(',').map((x) => x.trim()).filter(Boolean);

/**
 * `dk users [list]|add|remove`: API users through the management API (an admin token, from any
 * host). `dk user add|list|remove` (user.ts) does the same on the gateway host's data dir, without
 * the API: the way to make the first users before there is a token.
 */
export function usersCommands(program: Command): void {
  const users = program.command('users')
    .description('manage API users through the API (admin token; `dk user` does it in a local data dir)')
    .addHelpText('after', `
Examples:
  dk users
  dk users add alice --backends home --ports 22
  dk users add bob --backends '*' --with-totp
  dk users remove alice`);

  apiOptions(users.command('list', { isDefault: true }).description('list the API users and their permissions'))
    .addHelpText('after', "\nExamples:\n  dk users\n  dk users --json | jq -r '.users[] | select(.admin) | .name'")
    .action(async (o: ApiOpts, cmd: Command) => {
      const r = await callApi(creds(o, cmd), 'GET', 'api/v1/users');
      if (o.json) return void process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      const list = (r.users ?? []) as { name?: unknown; admin?: unknown; hasTotp?: unknown; permissions?: { backends?: unknown; hosts?: unknown; ports?: unknown } }[];
      if (list.length === 0) return void process.stdout.write('no users\n');
      const join = (v: unknown): string => (Array.isArray(v) && v.length > 0 ? v.map(cell).join(',') : '-');
      process.stdout.write(table(['NAME', 'ADMIN', 'BACKENDS', 'HOSTS', 'PORTS', 'TOTP'], list.map((u) => [
        cell(u.name), u.admin ? 'yes' : 'no', join(u.permissions?.backends), join(u.permissions?.hosts), cell(u.permissions?.ports), u.hasTotp ? 'yes' : 'no',
      ])));
    });

  apiOptions(users.command('add')
    .description('make an API user; prints its token once (and a TOTP QR code with --with-totp)')
    .argument('<name>', '1-64 letters, digits, ".", "_" or "-"')
    .option('--admin', 'may do everything')
    .option('--backends <list>', 'comma-separated backends this user may open ("*" = all)', '')
    .option('--hosts <list>', 'comma-separated CIDRs of target hosts ("*" = all)', '*')
    .option('--ports <list>', 'target ports, e.g. 22,3389,8000-8100 ("*" = all)', '*')
    .option('--with-totp', 'also enrol a TOTP authenticator (prints a QR code); --totp is the API login, as for every API command'))
    .addHelpText('after', '\nExample:\n  dk users add alice --backends home --ports 22')
    .action(async (name: string, o: ApiOpts & { admin?: boolean; backends: string; hosts: string; ports: string; withTotp?: boolean }, cmd: Command) => {
      const body = { name, admin: !!o.admin, backends: split(o.backends), hosts: split(o.hosts), ports: o.ports, totp: !!o.withTotp };
      if (!body.admin && body.backends.length === 0) process.stderr.write(`dk: warning: ${name} may open no backend; give --backends NAME,… (or --admin)\n`);
      const r = await callApi(creds(o, cmd), 'POST', 'api/v1/users', body);
      if (o.json) return void process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      process.stdout.write(`user ${name} created\napi token: ${cell(r.token)}   (shown once)\n`);
      if (typeof r.totp_uri === 'string') {
        process.stdout.write(`TOTP enrolment: ${r.totp_uri}\nScan with an authenticator app, then authenticate with --totp ${name}:CODE\n`);
        qrcode.generate(r.totp_uri, { small: true }, (qr) => process.stdout.write(qr + '\n'));
      }
    });

  apiOptions(users.command('remove')
    .description('remove an API user; its token stops working at once')
    .argument('<name>'))
    .addHelpText('after', '\nExample:\n  dk users remove alice')
    .action(async (name: string, o: ApiOpts, cmd: Command) => {
      const r = await callApi(creds(o, cmd), 'DELETE', `api/v1/users/${encodeURIComponent(name)}`);
      if (o.json) return void process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      process.stdout.write(`user ${name} removed\n`);
    });
}
