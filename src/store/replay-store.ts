import type { DatabaseSync, StatementSync } from 'node:sqlite';

/** What the agent handshake needs from a replay cache (src/auth/replay-cache.ts is the in-memory one). */
export interface SeedCache {
  /** Returns false if the seed was seen within the TTL; otherwise records it. */
  check(seed: Buffer): boolean;
}

/** Inserts between two enforcements of the row cap (a count is a scan of the index). */
const CAP_EVERY = 1024;

/**
 * Handshake seeds in SQLite (SPEC §4: "Seeds seen recently are remembered and a replay is
 * refused"), so the promise holds across a gateway restart: a handshake captured before it is
 * refused after it. Bounded like the in-memory cache: rows older than `ttlMs` are deleted, and
 * past `max` rows the oldest go first. Only handshakes with a valid HMAC reach it, so only a
 * holder of a backend key can make it write.
 */
export class SqliteSeedCache implements SeedCache {
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #now: () => number;
  readonly #expire: StatementSync;
  readonly #insert: StatementSync;
  readonly #db: DatabaseSync;
  #sinceCap = 0;

  constructor(db: DatabaseSync, ttlMs: number, max: number, now: () => number = Date.now) {
    this.#db = db;
    this.#ttlMs = ttlMs;
    this.#max = max;
    this.#now = now;
    this.#expire = db.prepare('DELETE FROM replay_seeds WHERE seen_at <= ?');
    this.#insert = db.prepare('INSERT INTO replay_seeds (seed, seen_at) VALUES (?, ?) ON CONFLICT(seed) DO NOTHING');
  }

  check(seed: Buffer): boolean {
    const now = this.#now();
    this.#expire.run(now - this.#ttlMs);
    const fresh = Number(this.#insert.run(seed, now).changes) === 1;
    if (fresh && ++this.#sinceCap >= CAP_EVERY) {
      this.#sinceCap = 0;
      this.#db.prepare('DELETE FROM replay_seeds WHERE rowid IN (SELECT rowid FROM replay_seeds ORDER BY seen_at DESC LIMIT -1 OFFSET ?)').run(this.#max);
    }
    return fresh;
  }

  get size(): number {
    return (this.#db.prepare('SELECT count(*) AS n FROM replay_seeds').get() as { n: number }).n;
  }
}
