import type { DatabaseSync } from 'node:sqlite';
import { AuditLog } from '../gateway/audit.ts';
import { GrantStore } from '../gateway/grants.ts';
import type { BackendRepo, GatewayStores } from '../gateway/stores.ts';
import { UserStore } from '../gateway/users.ts';
import { openDb } from './db.ts';
import { SqliteSeedCache } from './replay-store.ts';
import { SqlitePeerStore } from './sqlite-peer-store.ts';

/** SPEC §4: handshake seeds are remembered this long, at most this many (docs/security.md). */
const SEED_TTL_MS = 3_600_000;
const SEED_MAX = 100_000;

class SqliteBackends implements BackendRepo {
  readonly #db: DatabaseSync;
  constructor(db: DatabaseSync) {
    this.#db = db;
  }
  all(): { name: string; key: string }[] {
    return this.#db.prepare('SELECT name, key FROM backends').all() as { name: string; key: string }[];
  }
  upsert(name: string, key: string): void {
    this.#db.prepare('INSERT INTO backends (name, key, created_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET key = excluded.key')
      .run(name, key, Date.now());
  }
}

/** The embedded state: one SQLite file in the data dir (SPEC §8), every store over it. */
export function openSqliteStores(dataDir: string, onAuditError: (err: unknown) => void): GatewayStores {
  const db = openDb(dataDir);
  const audit = new AuditLog(db);
  audit.onError = onAuditError;
  return {
    users: new UserStore(db),
    grants: new GrantStore(db),
    audit,
    backends: new SqliteBackends(db),
    seeds: new SqliteSeedCache(db, SEED_TTL_MS, SEED_MAX),
    rdvPeers: new SqlitePeerStore(db),
    close() {
      audit.flushQuietly();
      db.close();
    },
  };
}
