import { createHash, randomBytes } from 'node:crypto';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { Secret, TOTP } from 'otpauth';

/** What a user may open: backends by name ('*' = all), target hosts by CIDR, target ports. */
export interface Permissions {
  backends: string[];
  hosts: string[];
  ports: string;
}
export const ALL_PERMISSIONS: Permissions = { backends: ['*'], hosts: ['*'], ports: '*' };

export interface User {
  id: number;
  name: string;
  admin: boolean;
  permissions: Permissions;
  hasTotp: boolean;
}

interface Row {
  id: number;
  name: string;
  admin: number;
  permissions: string;
  totp_secret: string | null;
  totp_last_step: number;
}

/**
 * API tokens are 192 random bits, so a plain SHA-256 is a sufficient one-way store (no password
 * stretching is needed for high-entropy secrets); lookups are by hash.
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
export function newToken(): string {
  return `dk_${randomBytes(24).toString('base64url')}`;
}

/** RFC 6238 parameters of the original DoorKeeper and of every authenticator app. */
function totpFor(name: string, secret: string): TOTP {
  return new TOTP({ issuer: 'DoorKeeper', label: name, algorithm: 'SHA1', digits: 6, period: 30, secret: Secret.fromBase32(secret) });
}

export class UserStore {
  readonly #db: DatabaseSync;
  readonly #now: () => number;
  /** Prepared once: every API request and every `dk connect` session looks its token up. */
  #byTokenStmt: StatementSync | null = null;

  constructor(db: DatabaseSync, now: () => number = Date.now) {
    this.#db = db;
    this.#now = now;
  }

  #toUser(r: Row): User {
    return { id: r.id, name: r.name, admin: r.admin === 1, permissions: JSON.parse(r.permissions) as Permissions, hasTotp: r.totp_secret !== null };
  }

  count(): number {
    return (this.#db.prepare('SELECT count(*) AS n FROM users').get() as { n: number }).n;
  }

  /** Creates a user; returns the token (shown once) and, if asked, the TOTP otpauth:// URI. */
  create(name: string, opts: { admin?: boolean; permissions?: Permissions; totp?: boolean; token?: string }): { user: User; token: string; totpUri?: string } {
    const token = opts.token ?? newToken();
    const secret = opts.totp ? new Secret({ size: 20 }).base32 : null;
    const perms = opts.permissions ?? (opts.admin ? ALL_PERMISSIONS : { backends: [], hosts: ['*'], ports: '*' });
    const r = this.#db.prepare(
      'INSERT INTO users (name, token_hash, totp_secret, admin, permissions, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING *',
    ).get(name, hashToken(token), secret, opts.admin ? 1 : 0, JSON.stringify(perms), this.#now()) as unknown as Row;
    const user = this.#toUser(r);
    return secret ? { user, token, totpUri: totpFor(name, secret).toString() } : { user, token };
  }

  /** Sets (or replaces) a user's token, e.g. the configured admin_token. */
  setToken(name: string, token: string): void {
    this.#db.prepare('UPDATE users SET token_hash = ? WHERE name = ?').run(hashToken(token), name);
  }

  byToken(token: string): User | null {
    this.#byTokenStmt ??= this.#db.prepare('SELECT * FROM users WHERE token_hash = ?');
    const r = this.#byTokenStmt.get(hashToken(token)) as Row | undefined;
    return r ? this.#toUser(r) : null;
  }

  byName(name: string): User | null {
    const r = this.#db.prepare('SELECT * FROM users WHERE name = ?').get(name) as Row | undefined;
    return r ? this.#toUser(r) : null;
  }

  list(): User[] {
    return (this.#db.prepare('SELECT * FROM users ORDER BY id').all() as unknown as Row[]).map((r) => this.#toUser(r));
  }

  remove(name: string): boolean {
    return Number(this.#db.prepare('DELETE FROM users WHERE name = ?').run(name).changes) > 0;
  }

  /**
   * Checks a TOTP code (±1 step of clock skew). A code's time step can be used once: the last
   * accepted step is stored, so a code seen on the wire cannot be replayed.
   */
  verifyTotp(name: string, code: string): User | null {
    const r = this.#db.prepare('SELECT * FROM users WHERE name = ?').get(name) as Row | undefined;
    if (!r?.totp_secret || !/^\d{6}$/.test(code)) return null;
    const totp = totpFor(name, r.totp_secret);
    const now = this.#now();
    const delta = totp.validate({ token: code, timestamp: now, window: 1 });
    if (delta === null) return null;
    const step = Math.floor(now / 30_000) + delta;
    if (step <= r.totp_last_step) return null;
    this.#db.prepare('UPDATE users SET totp_last_step = ? WHERE id = ?').run(step, r.id);
    return this.#toUser(r);
  }
}
