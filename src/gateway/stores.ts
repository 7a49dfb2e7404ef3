import type { PeerRepo } from '../rendezvous/peer-store.ts';
import type { AuditEvent, AuditRow } from './audit.ts';
import type { Grant } from './grants.ts';
import type { Permissions, User } from './users.ts';

/**
 * The gateway's state, behind interfaces: the owners depend on these, never on SQLite. The
 * embedded implementation is SQLite in the data dir (src/store/sqlite-stores.ts); a store shared
 * by a cluster of gateways implements the same interfaces.
 */
export interface UserRepo {
  count(): number;
  create(name: string, opts: { admin?: boolean; permissions?: Permissions; totp?: boolean; token?: string }): { user: User; token: string; totpUri?: string };
  setToken(name: string, token: string): void;
  byToken(token: string): User | null;
  byName(name: string): User | null;
  list(): User[];
  remove(name: string): boolean;
  /** A TOTP code for `name`, accepted once per time step. */
  verifyTotp(name: string, code: string): User | null;
}

export interface GrantRepo {
  /** Inserts a grant, or updates its idle deadline. */
  save(g: Grant): void;
  delete(id: string): void;
  /** The grants still valid at `now` (expired ones are forgotten). */
  loadValid(now: number): Grant[];
}

export interface AuditRepo {
  write(e: AuditEvent): void;
  recent(limit: number): AuditRow[];
  prune(days: number): void;
  /** Writes what is queued; failures are reported, not thrown (timers, shutdown). */
  flushQuietly(): void;
}

export interface BackendRepo {
  all(): { name: string; key: string }[];
  /** Adds a backend or changes its key. */
  upsert(name: string, key: string): void;
}

export interface SeedRepo {
  /** False if the handshake seed was seen within the replay window; otherwise records it. */
  check(seed: Buffer): boolean;
}

export interface GatewayStores {
  users: UserRepo;
  grants: GrantRepo;
  audit: AuditRepo;
  backends: BackendRepo;
  seeds: SeedRepo;
  /** The RustDesk rendezvous peer table. */
  rdvPeers: PeerRepo;
  close(): void;
}
