import type { PeerRepo, StoredPeer } from './peer-store.ts';

/**
 * The peers this server knows, in memory (hbbs's PeerMap, FACTS §5.1, §5.4), over the persistent
 * PeerRepo. "Online" is memory-only, as in hbbs: a peer is online while its last accepted
 * registration is younger than REG_TIMEOUT.
 *
 * Memory is bounded: at most `maxPeers` entries. hbbs never evicts; here a new peer that finds
 * the table full takes the place of an offline one, and is refused when there is none. The map
 * is kept in order of the last registration (refresh() moves a peer to the end), so the entry
 * looked at first is the one most likely offline; eviction looks at most EVICT_SCAN entries and
 * moves the online ones it meets to the end, so the next attempt looks at others. The repo keeps
 * every peer either way.
 * uuid and pk are held as latin1 strings: a short one-byte string costs less than a Buffer.
 */
export const REG_TIMEOUT_MS = 30_000;
const EVICT_SCAN = 64;

/** A TCP (or WebSocket) connection a peer registered over (TCP registration, beyond open hbbs). */
export interface PeerRoute {
  send(bytes: Uint8Array): void;
  readonly closed: boolean;
}

export class Peer {
  readonly id: string;
  uuid = '';
  pk = '';
  /** The address it registers from (socket_addr); port 0 when unknown. */
  address = '';
  port = 0;
  /** info.ip: the address of the last RegisterPk that changed something. */
  ip = '';
  lastRegTime = 0;
  regPkCount = 0;
  regPkAt = 0;
  /** NatType as the peer last reported it (PunchHoleSent), -1 when unknown. */
  natType = -1;
  route: PeerRoute | null = null;

  constructor(id: string) {
    this.id = id;
  }

  pkBytes(): Buffer {
    return Buffer.from(this.pk, 'latin1');
  }
}

export class PeerTable {
  readonly #peers = new Map<string, Peer>();
  readonly #repo: PeerRepo;
  readonly #max: number;
  readonly #now: () => number;
  readonly #maxStored: number;
  /** Rows in the repo: counted once at start, then kept as peers are stored and deleted (the API and the dashboard read it every second; a count(*) over millions of rows would not do). */
  stored: number;

  constructor(repo: PeerRepo, maxPeers: number, now: () => number = Date.now, maxStored = Number.MAX_SAFE_INTEGER) {
    this.#repo = repo;
    this.#max = maxPeers;
    this.#now = now;
    this.#maxStored = maxStored;
    this.stored = repo.count();
  }

  /** False when the repo holds max_stored_peers: a new id is refused. */
  mayStoreAnother(): boolean {
    return this.stored < this.#maxStored;
  }

  get size(): number {
    return this.#peers.size;
  }

  get repo(): PeerRepo {
    return this.#repo;
  }

  /** The peer in memory (RegisterPeer looks only here, as hbbs does). */
  memory(id: string): Peer | undefined {
    return this.#peers.get(id);
  }

  /**
   * The peer in memory, else from the repo as an offline record that is *not* kept in memory
   * (hbbs caches it; here a flood of punch requests for stored ids cannot grow the table).
   */
  lookup(id: string): Peer | undefined {
    const p = this.#peers.get(id);
    if (p) return p;
    const s = this.#repo.get(id);
    return s ? fromStored(s, this.#now() - 3_600_000) : undefined;
  }

  /** A registration was accepted: the peer is online from now, and last in eviction order. */
  refresh(p: Peer, now = this.#now()): void {
    p.lastRegTime = now;
    if (this.#peers.get(p.id) === p) {
      this.#peers.delete(p.id);
      this.#peers.set(p.id, p);
    }
  }

  isOnline(p: Peer, now = this.#now()): boolean {
    return now - p.lastRegTime < REG_TIMEOUT_MS;
  }

  /**
   * Puts a peer in memory, making room if needed; false if the table is full of online peers.
   */
  insert(p: Peer): boolean {
    if (this.#peers.has(p.id)) {
      this.#peers.set(p.id, p);
      return true;
    }
    if (this.#peers.size >= this.#max && !this.#evictOne()) return false;
    this.#peers.set(p.id, p);
    return true;
  }

  /** Forgets a peer in memory and in the repo. */
  delete(id: string): boolean {
    const inMemory = this.#peers.delete(id);
    const stored = this.#repo.delete(id);
    if (stored) this.stored--;
    return stored || inMemory;
  }

  onlineCount(now = this.#now()): number {
    let n = 0;
    for (const p of this.#peers.values()) if (now - p.lastRegTime < REG_TIMEOUT_MS) n++;
    return n;
  }

  values(): IterableIterator<Peer> {
    return this.#peers.values();
  }

  #evictOne(): boolean {
    const now = this.#now();
    const online: Peer[] = [];
    let found: Peer | null = null;
    for (const p of this.#peers.values()) {
      if (now - p.lastRegTime >= REG_TIMEOUT_MS && !(p.route && !p.route.closed)) {
        found = p;
        break;
      }
      online.push(p);
      if (online.length >= EVICT_SCAN) break;
    }
    for (const p of online) {
      this.#peers.delete(p.id);
      this.#peers.set(p.id, p);
    }
    if (found) this.#peers.delete(found.id);
    return found !== null;
  }
}

export function fromStored(s: StoredPeer, lastRegTime: number): Peer {
  const p = new Peer(s.id);
  p.uuid = Buffer.from(s.uuid).toString('latin1');
  p.pk = Buffer.from(s.pk).toString('latin1');
  p.ip = s.ip;
  p.lastRegTime = lastRegTime;
  return p;
}
