import { chmodSync, copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { Command } from 'commander';
import { ConfigError } from '../../config/errors.ts';
import { toV4IfMapped } from '../../rendezvous/addr-mangle.ts';
import { formatPublicKeyFile, parsePublicKeyFile, parseSecretKeyFile, PUBLIC_KEY_FILE, SECRET_KEY_FILE } from '../../rendezvous/keys.ts';
import { openDb } from '../../store/db.ts';
import { SqlitePeerStore } from '../../store/sqlite-peer-store.ts';

interface HbbsRow { id: string; uuid: Uint8Array | null; pk: Uint8Array | null; created_at: string | number | null; info: string | null }

/** `dk rendezvous import-hbbs`: moves an hbbs installation's peer table (and keys) into a gateway data dir. */
export function rendezvousCommands(program: Command): void {
  const rdv = program.command('rendezvous').description('the RustDesk-compatible rendezvous: move from hbbs');
  rdv.command('import-hbbs')
    .description("import hbbs's peer table (db_v2.sqlite3) into the gateway data dir; with --keys-from, hbbs's key files too")
    .argument('<db>', "hbbs's database file, db_v2.sqlite3")
    .option('--data-dir <dir>', 'gateway data dir', './dk-data')
    .option('--keys-from <dir>', "hbbs's working directory: copy id_ed25519 and id_ed25519.pub from it, so clients keep their Key")
    .addHelpText('after', '\nExample (hbbs stopped first):\n  dk rendezvous import-hbbs /opt/rustdesk/db_v2.sqlite3 --keys-from /opt/rustdesk --data-dir /var/lib/doorkeeper')
    .action((file: string, o: { dataDir: string; keysFrom?: string }) => {
      if (!existsSync(file)) throw new ConfigError(`${file}: no such file (hbbs keeps db_v2.sqlite3 in its working directory)`);
      if (o.keysFrom) copyKeys(o.keysFrom, o.dataDir);
      let src: DatabaseSync;
      let rows: HbbsRow[];
      try {
        src = new DatabaseSync(file, { readOnly: true });
        rows = src.prepare('SELECT id, uuid, pk, created_at, info FROM peer').all() as unknown as HbbsRow[];
      } catch (e) {
        throw new ConfigError(`${file}: not an hbbs peer database (${(e as Error).message})`);
      }
      src.close();
      const db = openDb(o.dataDir);
      const store = new SqlitePeerStore(db);
      let imported = 0;
      const skipped: string[] = [];
      db.exec('BEGIN');
      for (const r of rows) {
        if (typeof r.id !== 'string' || r.id === '' || !r.uuid || !r.pk || r.uuid.length === 0 || r.pk.length === 0) {
          skipped.push(String(r.id));
          continue;
        }
        store.importRow({ id: r.id, uuid: r.uuid, pk: r.pk, ip: ipOf(r.info), createdAt: timeOf(r.created_at) });
        imported++;
      }
      db.exec('COMMIT');
      db.close();
      process.stdout.write(`imported ${imported} peers from ${file} into ${o.dataDir}${skipped.length ? `; skipped ${skipped.length} without a uuid or key (${skipped.slice(0, 5).join(', ')}${skipped.length > 5 ? ', …' : ''})` : ''}\n`);
    });
}

/** Copies hbbs's key pair, checked, unless the data dir already has a different one. */
function copyKeys(from: string, dataDir: string): void {
  const sk = join(from, SECRET_KEY_FILE);
  if (!existsSync(sk)) throw new ConfigError(`--keys-from ${from}: no ${SECRET_KEY_FILE} there`);
  const pair = parseSecretKeyFile(readFileSync(sk, 'utf8'), sk);
  const pk = join(from, PUBLIC_KEY_FILE);
  if (existsSync(pk) && !parsePublicKeyFile(readFileSync(pk, 'utf8'), pk).equals(pair.publicKey)) {
    throw new ConfigError(`--keys-from ${from}: ${PUBLIC_KEY_FILE} does not match ${SECRET_KEY_FILE}`);
  }
  openDb(dataDir).close();
  const mine = join(dataDir, SECRET_KEY_FILE);
  if (existsSync(mine)) {
    const have = parseSecretKeyFile(readFileSync(mine, 'utf8'), mine);
    if (have.publicKey.equals(pair.publicKey)) return;
    throw new ConfigError(`${mine} exists with another key (${have.publicKeyBase64}); move it away first if the hbbs key (${pair.publicKeyBase64}) should replace it`);
  }
  copyFileSync(sk, mine);
  chmodSync(mine, 0o600);
  writeFileSync(join(dataDir, PUBLIC_KEY_FILE), formatPublicKeyFile(pair), { mode: 0o644 });
  process.stdout.write(`copied ${SECRET_KEY_FILE} and ${PUBLIC_KEY_FILE} from ${from}: Key ${pair.publicKeyBase64}\n`);
}

function ipOf(info: string | null): string {
  try {
    const ip = (JSON.parse(info ?? '{}') as { ip?: unknown }).ip;
    // hbbs listens dual-stack and stores IPv4 clients v4-mapped; DoorKeeper compares the IPv4 form.
    return typeof ip === 'string' ? toV4IfMapped(ip) : '';
  } catch {
    return '';
  }
}

/** hbbs writes created_at as SQLite's "YYYY-MM-DD HH:MM:SS" (UTC). */
function timeOf(v: string | number | null): number {
  if (typeof v === 'number') return v < 1e12 ? v * 1000 : v;
  const t = v ? Date.parse(`${v.replace(' ', 'T')}Z`) : NaN;
  return Number.isNaN(t) ? Date.now() : t;
}
