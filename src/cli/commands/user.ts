import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import qrcode from 'qrcode-terminal';
import { ConfigError } from '../../config/errors.ts';
import { UserStore } from '../../gateway/users.ts';
import { DB_FILE, openDb } from '../../store/db.ts';
import { warnLine } from '../common.ts';

/** `dk user add|list|remove`: API users in a gateway data dir. */
export function userCommands(program: Command): void {
  const user = program.command('user').description('manage API users in a gateway data dir (works while the gateway runs)');
  user.command('add')
    .description('create an API user and print its token once')
    .addHelpText('after', '\nExample:\n  dk user add alice --backends home --ports 22 --data-dir /var/lib/dk')
    .argument('<name>')
    .option('--data-dir <dir>', 'gateway data dir', './dk-data')
    .option('--admin', 'may do everything')
    .option('--backends <list>', 'comma-separated backends this user may open ("*" = all)', '')
    .option('--hosts <list>', 'comma-separated CIDRs of target hosts ("*" = all)', '*')
    .option('--ports <list>', 'target ports, e.g. 22,3389,8000-8100 ("*" = all)', '*')
    .option('--totp', 'also enrol a TOTP authenticator (prints a QR code)')
    .action((name: string, o: { dataDir: string; admin?: boolean; backends: string; hosts: string; ports: string; totp?: boolean }) => {
      const split = (s: string): string[] => s.split(',').map((x) => x.trim()).filter(Boolean);
      const fresh = !existsSync(join(o.dataDir, DB_FILE));
      const users = new UserStore(openDb(o.dataDir));
      if (fresh) warnLine(`${o.dataDir} held no gateway database; made a new one. If the gateway keeps its state elsewhere, give --data-dir that directory`);
      if (users.byName(name)) throw new ConfigError(`user "${name}" exists`);
      if (!o.admin && split(o.backends).length === 0) {
        warnLine(`user "${name}" may open nothing: give --backends NAME[,NAME…] (or "*"), or --admin`);
      }
      const r = users.create(name, { admin: !!o.admin, totp: !!o.totp, permissions: { backends: split(o.backends), hosts: split(o.hosts), ports: o.ports } });
      process.stdout.write(`user ${name} created\napi token: ${r.token}   (shown once)\n`);
      if (r.totpUri) {
        process.stdout.write(`TOTP enrolment: ${r.totpUri}\nScan with an authenticator app, then authenticate with --totp ${name}:CODE\n`);
        qrcode.generate(r.totpUri, { small: true }, (qr) => process.stdout.write(qr + '\n'));
      }
    });
  user.command('list').description('list the users (reads the data dir; makes nothing)')
    .option('--data-dir <dir>', 'gateway data dir', './dk-data').action((o: { dataDir: string }) => {
    for (const u of new UserStore(openDb(o.dataDir, DB_FILE, { create: false })).list()) {
      process.stdout.write(`${u.name}${u.admin ? ' (admin)' : ''} backends=${u.permissions.backends.join(',') || '-'} hosts=${u.permissions.hosts.join(',')} ports=${u.permissions.ports}${u.hasTotp ? ' totp' : ''}\n`);
    }
  });
  user.command('remove').description('remove a user; its token stops working at once').argument('<name>')
    .option('--data-dir <dir>', 'gateway data dir', './dk-data').action((name: string, o: { dataDir: string }) => {
    if (!new UserStore(openDb(o.dataDir, DB_FILE, { create: false })).remove(name)) throw new ConfigError(`no user "${name}"`);
    process.stdout.write(`user ${name} removed\n`);
  });
}
