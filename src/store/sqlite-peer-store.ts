import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { PeerRepo, StoredPeer } from '../rendezvous/peer-store.ts';

interface Row { id: string; uuid: Uint8Array; pk: Uint8Array; ip: string; created_at: number }

/** The rendezvous peer table in the gateway's SQLite file (migration 3). */
export class SqlitePeerStore implements PeerRepo {
  readonly #get: StatementSync;
  readonly #upsert: StatementSync;
  readonly #delete: StatementSync;
  readonly #count: StatementSync;
  readonly #list: StatementSync;
  readonly #db: DatabaseSync;

  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#get = db.prepare('SELECT id, uuid, pk, ip, created_at FROM rdv_peers WHERE id = ?');
    this.#upsert = db.prepare(`INSERT INTO rdv_peers (id, uuid, pk, ip, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT(id) DO UPDATE SET uuid = excluded.uuid, pk = excluded.pk, ip = excluded.ip, updated_at = excluded.updated_at`);
    this.#delete = db.prepare('DELETE FROM rdv_peers WHERE id = ?');
    this.#count = db.prepare('SELECT count(*) AS n FROM rdv_peers');
    this.#list = db.prepare('SELECT id, uuid, pk, ip, created_at FROM rdv_peers WHERE id > ? ORDER BY id LIMIT ?');
  }

  get(id: string): StoredPeer | null {
    const r = this.#get.get(id) as Row | undefined;
    return r ? toPeer(r) : null;
  }

  upsert(p: Omit<StoredPeer, 'createdAt'>): void {
    const now = Date.now();
    this.#upsert.run(p.id, p.uuid, p.pk, p.ip, now, now);
  }

  /** Imports a row as it was (created_at kept): `dk rendezvous import-hbbs`. */
  importRow(p: StoredPeer): void {
    this.#upsert.run(p.id, p.uuid, p.pk, p.ip, p.createdAt, Date.now());
  }

  delete(id: string): boolean {
    return Number(this.#delete.run(id).changes) > 0;
  }

  count(): number {
    return Number((this.#count.get() as { n: number }).n);
  }

  list(after: string, limit: number): StoredPeer[] {
    return (this.#list.all(after, limit) as unknown as Row[]).map(toPeer);
  }

  blocked(): string[] {
    return (this.#db.prepare('SELECT ip FROM rdv_blocked ORDER BY ip').all() as { ip: string }[]).map((r) => r.ip);
  }

  block(ip: string): void {
    this.#db.prepare('INSERT INTO rdv_blocked (ip, created_at) VALUES (?, ?) ON CONFLICT(ip) DO NOTHING').run(ip, Date.now());
  }

  unblock(ip: string): boolean {
    return Number(this.#db.prepare('DELETE FROM rdv_blocked WHERE ip = ?').run(ip).changes) > 0;
  }
}

function toPeer(r: Row): StoredPeer {
  return { id: r.id, uuid: r.uuid, pk: r.pk, ip: r.ip, createdAt: r.created_at };
}
