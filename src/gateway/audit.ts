import type { DatabaseSync, SQLInputValue, StatementSync } from 'node:sqlite';

const FLUSH_MS = 100;
const FLUSH_ROWS = 512;

export interface AuditEvent {
  event: string;
  user?: string | null;
  clientIp?: string | null;
  backend?: string | null;
  target?: string | null;
  grantId?: string | null;
  sessionId?: number | null;
  bytesUp?: number | null;
  bytesDown?: number | null;
  detail?: string | null;
}

export interface AuditRow extends AuditEvent {
  id: number;
  ts: number;
}

/**
 * The audit log of access (who, from which IP, to what, when, bytes each way). Only authenticated
 * actions are written, so unauthenticated traffic cannot grow the file; rows older than
 * `audit_days` are pruned.
 */
export class AuditLog {
  readonly #db: DatabaseSync;
  readonly #now: () => number;
  readonly #insert: StatementSync;
  #queue: unknown[][] = [];
  #timer: NodeJS.Timeout | null = null;
  /** Where a failed background flush is reported. */
  onError: (err: unknown) => void = () => undefined;

  constructor(db: DatabaseSync, now: () => number = Date.now) {
    this.#db = db;
    this.#now = now;
    this.#insert = db.prepare(`INSERT INTO audit (ts, event, user_name, client_ip, backend, target, grant_id, session_id, bytes_up, bytes_down, detail)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  }

  /**
   * Queues a row; rows are written together, in one transaction, at most FLUSH_MS later (one
   * transaction per closed session cost more than the session itself at thousands per second).
   * Reads, prune and close flush first, so nothing queued is ever missing from an answer.
   */
  write(e: AuditEvent): void {
    this.#queue.push([
      this.#now(), e.event, e.user ?? null, e.clientIp ?? null, e.backend ?? null, e.target ?? null, e.grantId ?? null,
      e.sessionId ?? null, e.bytesUp ?? null, e.bytesDown ?? null, e.detail ?? null,
    ]);
    if (this.#queue.length >= FLUSH_ROWS) this.flushQuietly();
    else this.#timer ??= setTimeout(() => this.flushQuietly(), FLUSH_MS).unref();
  }

  /** Writes every queued row now. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#queue.length === 0) return;
    const rows = this.#queue;
    this.#queue = [];
    this.#db.exec('BEGIN');
    try {
      for (const r of rows) this.#insert.run(...(r as SQLInputValue[]));
      this.#db.exec('COMMIT');
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  /** flush(), with a failure reported to onError instead of thrown (timers, shutdown). */
  flushQuietly(): void {
    try {
      this.flush();
    } catch (err) {
      this.onError(err);
    }
  }

  recent(limit: number): AuditRow[] {
    this.flush();
    const rows = this.#db.prepare('SELECT * FROM audit ORDER BY id DESC LIMIT ?').all(limit) as Record<string, unknown>[];
    return rows.map((r) => ({
      id: r.id as number, ts: r.ts as number, event: r.event as string, user: r.user_name as string | null,
      clientIp: r.client_ip as string | null, backend: r.backend as string | null, target: r.target as string | null,
      grantId: r.grant_id as string | null, sessionId: r.session_id as number | null, bytesUp: r.bytes_up as number | null,
      bytesDown: r.bytes_down as number | null, detail: r.detail as string | null,
    }));
  }

  prune(days: number): void {
    this.flush();
    this.#db.prepare('DELETE FROM audit WHERE ts < ?').run(this.#now() - days * 86_400_000);
  }
}
