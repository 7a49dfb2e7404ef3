import { randomBytes } from 'node:crypto';
import type { DatabaseSync } from 'node:sqlite';

/** A grant (SPEC §3): (client source IP, access port) → (backend, host:port), with deadlines. */
export interface Grant {
  id: string;
  userId: number | null;
  userName: string;
  clientIp: string;
  accessPort: number;
  backend: string;
  host: string;
  port: number;
  createdAt: number;
  /** Idle deadline: a grant with no session by then is dropped (idle_close, SPEC §2). */
  startBefore: number;
  /** Hard deadline: auth_time after creation (SPEC §2). */
  expiresAt: number;
}

export type GrantEnd = 'idle' | 'expired' | 'revoked';

export interface GrantRequest {
  userId: number | null;
  userName: string;
  clientIp: string;
  backend: string;
  host: string;
  port: number;
}

/**
 * The grant rules of SPEC §3 as a pure state object (clock injected, no sockets):
 * - a client IP asking again for the same target gets its existing grant, refreshed;
 * - otherwise it reuses an open access port on which this IP has no grant yet, else needs a new port;
 * - a grant is dropped when it has had no session for idle_close, and at auth_time in any case;
 * - live sessions keep a grant from idling out.
 */
export class GrantTable {
  readonly #byId = new Map<string, Grant>();
  /**
   * The grant for each (access port, client IP): every new connection to an access port looks its
   * grant up here. A port is only given to an IP that holds no grant on it, so the pair is unique.
   */
  readonly #byPortIp = new Map<string, Grant>();
  readonly #active = new Map<string, number>();
  /** Each grant's idle deadline as last handed out for saving (refreshActive). */
  readonly #saved = new Map<string, number>();
  readonly idleMs: number;
  readonly lifeMs: number;
  readonly #now: () => number;

  constructor(idleMs: number, lifeMs: number, now: () => number = Date.now) {
    this.idleMs = idleMs;
    this.lifeMs = lifeMs;
    this.#now = now;
  }

  all(): Grant[] {
    return [...this.#byId.values()];
  }
  get(id: string): Grant | undefined {
    return this.#byId.get(id);
  }
  activeSessions(id: string): number {
    return this.#active.get(id) ?? 0;
  }

  /** The grant a connection from `ip` to access port `port` may use, if any and still valid. */
  lookup(port: number, ip: string): Grant | undefined {
    const g = this.#byPortIp.get(portIp(port, ip));
    return g && this.#now() < g.expiresAt ? g : undefined;
  }

  /** Existing grant for exactly this target from this IP (refreshed), if any. */
  existing(r: GrantRequest): Grant | undefined {
    for (const g of this.#byId.values()) {
      if (g.clientIp === r.clientIp && g.backend === r.backend && g.host === r.host && g.port === r.port && g.userName === r.userName) {
        g.startBefore = Math.max(g.startBefore, Math.min(this.#now() + this.idleMs, g.expiresAt));
        return g;
      }
    }
    return undefined;
  }

  /** An open access port on which `ip` holds no grant yet (lowest first), or null. */
  reusablePort(ip: string, openPorts: Iterable<number>): number | null {
    const taken = new Set<number>();
    for (const g of this.#byId.values()) if (g.clientIp === ip) taken.add(g.accessPort);
    const candidates = [...openPorts].filter((p) => !taken.has(p)).sort((a, b) => a - b);
    return candidates[0] ?? null;
  }

  create(r: GrantRequest, accessPort: number): Grant {
    const now = this.#now();
    const g: Grant = {
      id: randomBytes(8).toString('hex'), ...r, accessPort,
      createdAt: now, startBefore: Math.min(now + this.idleMs, now + this.lifeMs), expiresAt: now + this.lifeMs,
    };
    this.#add(g);
    return g;
  }

  /** Restores a persisted grant (after a gateway restart). */
  restore(g: Grant): void {
    this.#add(g);
  }

  #add(g: Grant): void {
    this.#saved.set(g.id, g.startBefore);
    this.#byId.set(g.id, g);
    this.#byPortIp.set(portIp(g.accessPort, g.clientIp), g);
  }

  sessionStarted(id: string): void {
    this.#active.set(id, this.activeSessions(id) + 1);
  }

  sessionEnded(id: string): void {
    const n = this.activeSessions(id) - 1;
    if (n > 0) this.#active.set(id, n);
    else this.#active.delete(id);
    const g = this.#byId.get(id);
    if (g && n <= 0) g.startBefore = Math.min(this.#now() + this.idleMs, g.expiresAt);
  }

  /**
   * A grant with live sessions cannot idle out, so its idle deadline moves with the clock: then
   * the deadline a restart finds (a restart ends the sessions) is the one those sessions earned.
   * Returns the grants whose deadline moved by half of idle_close or more since they were last
   * returned, for the caller to save: a write per grant per idle_close/2, not per sweep.
   */
  refreshActive(): Grant[] {
    const out: Grant[] = [];
    const now = this.#now();
    for (const id of this.#active.keys()) {
      const g = this.#byId.get(id);
      if (!g) continue;
      g.startBefore = Math.max(g.startBefore, Math.min(now + this.idleMs, g.expiresAt));
      if (this.dueForSave(g, this.idleMs / 2)) out.push(g);
    }
    return out;
  }

  /**
   * Whether `g`'s idle deadline moved by `minStepMs` or more since it was last handed out for
   * saving; if so it counts as saved from now. Bounds the writes a busy grant causes (one per
   * step, not one per connection) and how far the deadline on disk can lag (less than a step).
   */
  dueForSave(g: Grant, minStepMs: number): boolean {
    if (g.startBefore - (this.#saved.get(g.id) ?? 0) < minStepMs) return false;
    this.#saved.set(g.id, g.startBefore);
    return true;
  }

  remove(id: string): Grant | undefined {
    const g = this.#byId.get(id);
    this.#byId.delete(id);
    this.#active.delete(id);
    this.#saved.delete(id);
    if (g) {
      const key = portIp(g.accessPort, g.clientIp);
      if (this.#byPortIp.get(key) === g) this.#byPortIp.delete(key);
    }
    return g;
  }

  /** Removes and returns the grants whose time is up. */
  sweep(): { grant: Grant; why: GrantEnd }[] {
    const now = this.#now();
    const out: { grant: Grant; why: GrantEnd }[] = [];
    for (const g of this.#byId.values()) {
      if (now >= g.expiresAt) out.push({ grant: g, why: 'expired' });
      else if (this.activeSessions(g.id) === 0 && now >= g.startBefore) out.push({ grant: g, why: 'idle' });
    }
    for (const { grant } of out) this.remove(grant.id);
    return out;
  }

  portsInUse(): Set<number> {
    return new Set([...this.#byId.values()].map((g) => g.accessPort));
  }
}

function portIp(port: number, ip: string): string {
  return `${port} ${ip}`;
}

interface GrantRow {
  id: string; user_id: number | null; user_name: string; client_ip: string; access_port: number; backend: string;
  host: string; port: number; created_at: number; start_before: number; expires_at: number;
}

/** Grants in SQLite, so they survive a gateway restart. */
export class GrantStore {
  readonly #db: DatabaseSync;
  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  save(g: Grant): void {
    this.#db.prepare(`INSERT INTO grants (id, user_id, user_name, client_ip, access_port, backend, host, port, created_at, start_before, expires_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(id) DO UPDATE SET start_before = excluded.start_before`)
      .run(g.id, g.userId, g.userName, g.clientIp, g.accessPort, g.backend, g.host, g.port, g.createdAt, g.startBefore, g.expiresAt);
  }

  delete(id: string): void {
    this.#db.prepare('DELETE FROM grants WHERE id = ?').run(id);
  }

  loadValid(now: number): Grant[] {
    this.#db.prepare('DELETE FROM grants WHERE expires_at <= ?').run(now);
    return (this.#db.prepare('SELECT * FROM grants').all() as unknown as GrantRow[]).map((r) => ({
      id: r.id, userId: r.user_id, userName: r.user_name, clientIp: r.client_ip, accessPort: r.access_port, backend: r.backend,
      host: r.host, port: r.port, createdAt: r.created_at, startBefore: r.start_before, expiresAt: r.expires_at,
    }));
  }
}
