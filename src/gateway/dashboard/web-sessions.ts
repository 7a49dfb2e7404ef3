import { randomBytes, timingSafeEqual } from 'node:crypto';

/** A browser's login: the cookie names it, the page sends `csrf` with every state-changing call. */
export interface WebSession {
  readonly id: string;
  readonly csrf: string;
  readonly user: string;
  readonly createdAt: number;
  lastUsed: number;
}

export interface WebSessionsInit {
  /** Sessions held at most; the least recently used goes first when a new one needs room. */
  max?: number;
  /** Sessions one user holds at most (their least recently used goes first). */
  maxPerUser?: number;
  /** Ends a session unused this long. */
  idleMs?: number;
  /** Ends a session this long after login, used or not. */
  maxAgeMs?: number;
  now?: () => number;
  random?: (n: number) => Buffer;
}

/**
 * The dashboard's server-side session table (docs/dashboard.md, "Sign-in"): ids and CSRF tokens
 * are 128 random bits each; the table is bounded in size, per user and in time. Nothing about a
 * session is in the cookie but its id, so logging out or removing the user ends it everywhere.
 */
export class WebSessions {
  readonly #byId = new Map<string, WebSession>();
  readonly max: number;
  readonly maxPerUser: number;
  readonly idleMs: number;
  readonly maxAgeMs: number;
  readonly #now: () => number;
  readonly #random: (n: number) => Buffer;

  constructor(init: WebSessionsInit = {}) {
    this.max = init.max ?? 1000;
    this.maxPerUser = init.maxPerUser ?? 16;
    this.idleMs = init.idleMs ?? 30 * 60_000;
    this.maxAgeMs = init.maxAgeMs ?? 12 * 3_600_000;
    this.#now = init.now ?? Date.now;
    this.#random = init.random ?? randomBytes;
  }

  get size(): number {
    return this.#byId.size;
  }

  /** A new session for `user`; returns it and the ids of sessions it pushed out. */
  create(user: string): { session: WebSession; evicted: string[] } {
    const now = this.#now();
    const evicted: string[] = [];
    const mine = [...this.#byId.values()].filter((s) => s.user === user);
    // The map is in least-recently-used order (get() moves a session to the end).
    while (mine.length >= this.maxPerUser) evicted.push(this.#drop(mine.shift()!.id));
    if (this.#byId.size >= this.max) evicted.push(...this.sweep());
    while (this.#byId.size >= this.max) evicted.push(this.#drop(this.#byId.keys().next().value!));
    const s: WebSession = { id: this.#random(16).toString('base64url'), csrf: this.#random(16).toString('base64url'), user, createdAt: now, lastUsed: now };
    this.#byId.set(s.id, s);
    return { session: s, evicted };
  }

  /** The live session with this id, refreshed; null if unknown or expired (then forgotten). */
  get(id: string): WebSession | null {
    const s = this.#byId.get(id);
    if (!s) return null;
    const now = this.#now();
    if (now - s.lastUsed > this.idleMs || now - s.createdAt > this.maxAgeMs) {
      this.#byId.delete(id);
      return null;
    }
    s.lastUsed = now;
    this.#byId.delete(id);
    this.#byId.set(id, s);
    return s;
  }

  /** Whether the session is live, without counting this as a use (the event streams' check). */
  alive(id: string): boolean {
    const s = this.#byId.get(id);
    const now = this.#now();
    return s !== undefined && now - s.lastUsed <= this.idleMs && now - s.createdAt <= this.maxAgeMs;
  }

  /** When the session ends at the latest, unless unused for `idleMs` before that. */
  expiresAt(s: WebSession): number {
    return Math.min(s.lastUsed + this.idleMs, s.createdAt + this.maxAgeMs);
  }

  delete(id: string): boolean {
    return this.#byId.delete(id);
  }

  /** Ends every session of a user (removed); returns their ids. */
  deleteUser(user: string): string[] {
    const ids = [...this.#byId.values()].filter((s) => s.user === user).map((s) => s.id);
    for (const id of ids) this.#byId.delete(id);
    return ids;
  }

  /** Forgets expired sessions; returns their ids. */
  sweep(): string[] {
    const now = this.#now();
    const gone: string[] = [];
    for (const s of this.#byId.values()) {
      if (now - s.lastUsed > this.idleMs || now - s.createdAt > this.maxAgeMs) gone.push(s.id);
    }
    for (const id of gone) this.#byId.delete(id);
    return gone;
  }

  #drop(id: string): string {
    this.#byId.delete(id);
    return id;
  }
}

/** Constant-time comparison of a CSRF token the page sent with the session's. */
export function csrfMatches(s: WebSession, sent: string | undefined): boolean {
  if (sent === undefined) return false;
  const a = Buffer.from(s.csrf);
  const b = Buffer.from(sent);
  return a.length === b.length && timingSafeEqual(a, b);
}
