import type { Command } from 'commander';
import qrcode from 'qrcode-terminal';
import { ConfigError } from '../../config/errors.ts';
import { UserStore } from '../../gateway/users.ts';
import { openDb } from '../../store/db.ts';

/** `dk user add|list|remove`: API users in a gateway data dir. */
export function userCommands(program: Command): void {
  const user = program.command('user').description('manage API users in a gateway data dir (works while the gateway runs)');
  user.command('add')
    .argument('<name>')
    .option('--data-dir <dir>', 'gateway data dir', './dk-data')
    .option('--admin', 'may do everything')
    .option('--backends <list>', 'comma-separated backends this user may open ("*" = all)', '')
    .option('--hosts <list>', 'comma-separated CIDRs of target hosts ("*" = all)', '*')
    .option('--ports <list>', 'target ports, e.g. 22,3389,8000-8100 ("*" = all)', '*')
    .option('--totp', 'also enrol a TOTP authenticator (prints a QR code)')
    .action((name: string, o: { dataDir: string; admin?: boolean; backends: string; hosts: string; ports: string; totp?: boolean }) => {
      const users = new UserStore(openDb(o.dataDir));
      if (users.byName(name)) throw new ConfigError(`user "${name}" exists`);
      const split = (s: string): string[] => s.split(',').map((x) => x.trim()).filter(Boolean);
      const r = users.create(name, { admin: !!o.admin, totp: !!o.totp, permissions: { backends: split(o.backends), hosts: split(o.hosts), ports: o.ports } });
      process.stdout.write(`user ${name} created\napi token: ${r.token}   (shown once)\n`);
      if (r.totpUri) {
        process.stdout.write(`TOTP enrolment: ${r.totpUri}\nScan with an authenticator app, then authenticate with --totp ${name}:CODE\n`);
        qrcode.generate(r.totpUri, { small: true }, (qr) => process.stdout.write(qr + '\n'));
      }
    });
  user.command('list').option('--data-dir <dir>', 'gateway data dir', './dk-data').action((o: { dataDir: string }) => {
    for (const u of new UserStore(openDb(o.dataDir)).list()) {
      process.stdout.write(`${u.name}${u.admin ? ' (admin)' : ''} backends=${u.permissions.backends.join(',') || '-'} hosts=${u.permissions.hosts.join(',')} ports=${u.permissions.ports}${u.hasTotp ? ' totp' : ''}\n`);
    }
  });
  user.command('remove').argument('<name>').option('--data-dir <dir>', 'gateway data dir', './dk-data').action((name: string, o: { dataDir: string }) => {
    if (!new UserStore(openDb(o.dataDir)).remove(name)) throw new ConfigError(`no user "${name}"`);
    process.stdout.write(`user ${name} removed\n`);
  });
}
