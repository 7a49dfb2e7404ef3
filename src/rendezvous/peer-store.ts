/**
 * Where registered RustDesk peers are kept between restarts (hbbs's `peer` table, FACTS §5.4):
 * the id, the client's uuid and its Ed25519 public key, and the address it registered from.
 * The embedded implementation is SQLite in the gateway's data dir (src/store/sqlite-peer-store.ts);
 * a store shared by several gateways implements the same interface.
 */
export interface StoredPeer {
  id: string;
  uuid: Uint8Array;
  pk: Uint8Array;
  ip: string;
  /** ms since the epoch. */
  createdAt: number;
}

export interface PeerRepo {
  get(id: string): StoredPeer | null;
  /** Inserts or updates; throws if the write fails (the caller then answers SERVER_ERROR). */
  upsert(p: Omit<StoredPeer, 'createdAt'>): void;
  delete(id: string): boolean;
  count(): number;
  /** Ids in order, after `after` (exclusive), at most `limit`. */
  list(after: string, limit: number): StoredPeer[];
  /** Source addresses the operator blocked (API), kept across restarts. */
  blocked(): string[];
  block(ip: string): void;
  unblock(ip: string): boolean;
}
