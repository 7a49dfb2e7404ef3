import { chmodSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ConfigError } from '../config/errors.ts';
import { ensureDataDir } from './data-dir.ts';

/**
 * The gateway's state: one SQLite file in its data dir (SPEC §8), opened with node:sqlite.
 * Migrations are numbered and run in order inside a transaction; the version lives in
 * PRAGMA user_version.
 */
const MIGRATIONS: string[] = [
  `CREATE TABLE users (
     id INTEGER PRIMARY KEY,
     name TEXT NOT NULL UNIQUE,
     token_hash TEXT UNIQUE,
     totp_secret TEXT,
     totp_last_step INTEGER NOT NULL DEFAULT 0,
     admin INTEGER NOT NULL DEFAULT 0,
     permissions TEXT NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE TABLE backends (
     name TEXT PRIMARY KEY,
     key TEXT NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE TABLE grants (
     id TEXT PRIMARY KEY,
     user_id INTEGER,
     user_name TEXT NOT NULL,
     client_ip TEXT NOT NULL,
     access_port INTEGER NOT NULL,
     backend TEXT NOT NULL,
     host TEXT NOT NULL,
     port INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     start_before INTEGER NOT NULL,
     expires_at INTEGER NOT NULL
   );
   CREATE INDEX grants_port ON grants(access_port);
   CREATE TABLE audit (
     id INTEGER PRIMARY KEY,
     ts INTEGER NOT NULL,
     event TEXT NOT NULL,
     user_name TEXT,
     client_ip TEXT,
     backend TEXT,
     target TEXT,
     grant_id TEXT,
     session_id INTEGER,
     bytes_up INTEGER,
     bytes_down INTEGER,
     detail TEXT
   );
   CREATE INDEX audit_ts ON audit(ts);`,
  // 2: agent handshake seeds, so a handshake captured before a restart is refused after it.
  `CREATE TABLE replay_seeds (
     seed BLOB PRIMARY KEY,
     seen_at INTEGER NOT NULL
   );
   CREATE INDEX replay_seeds_seen ON replay_seeds(seen_at);`,
  // 3: the RustDesk rendezvous peer table (hbbs's \`peer\`): id, the client's uuid and Ed25519 key.
  `CREATE TABLE rdv_peers (
     id TEXT PRIMARY KEY,
     uuid BLOB NOT NULL,
     pk BLOB NOT NULL,
     ip TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE TABLE rdv_blocked (
     ip TEXT PRIMARY KEY,
     created_at INTEGER NOT NULL
   );`,
];

export const DB_FILE = 'doorkeeper.db';

/**
 * Opens the gateway's database. With `create: false` (commands that only look at existing state,
 * such as `dk user list`) a missing data dir or database is a ConfigError and nothing is made: a
 * mistyped or relative --data-dir must not leave an empty state behind that looks like a gateway's.
 */
export function openDb(dataDir: string, file = DB_FILE, opts: { create?: boolean } = {}): DatabaseSync {
  const path = join(dataDir, file);
  if (opts.create === false) {
    if (!existsSync(dataDir) || !statSync(dataDir).isDirectory()) {
      throw new ConfigError(`data_dir ${dataDir}: no such directory, so no gateway state to read; give --data-dir the gateway's data dir (its start-up line names it)`);
    }
    if (!existsSync(path)) throw new ConfigError(`data_dir ${dataDir}: holds no gateway database (${file}); give --data-dir the gateway's data dir (its start-up line names it)`);
  } else {
    ensureDataDir(dataDir);
  }
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path);
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;');
  } catch (e) {
    throw new ConfigError(`data_dir ${dataDir}: cannot open the database ${path}: ${(e as Error).message}; move a damaged file away, or give --data-dir another directory`);
  }
  try { chmodSync(path, 0o600); } catch { /* best effort: the file holds backend keys */ }
  const row = db.prepare('PRAGMA user_version').get() as { user_version: number };
  if (row.user_version > MIGRATIONS.length) {
    db.close();
    throw new ConfigError(`data_dir ${dataDir}: the database ${path} is at schema version ${row.user_version}, written by a newer DoorKeeper than this one (which knows ${MIGRATIONS.length}); run the newer version, or restore a backup made before the upgrade`);
  }
  for (let v = row.user_version; v < MIGRATIONS.length; v++) {
    db.exec('BEGIN');
    try {
      db.exec(MIGRATIONS[v]!);
      db.exec(`PRAGMA user_version = ${v + 1}`);
      db.exec('COMMIT');
    } catch (e) {
      db.exec('ROLLBACK');
      throw e;
    }
  }
  return db;
}
