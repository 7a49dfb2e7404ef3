import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { decodeRelayHeader, RELAY_HEADER_BYTES, RelaySide } from '../p2p/relay-header.ts';
import { RelayPipe, type PipeEndReason } from '../rendezvous/relay-pipe.ts';
import { TcpEnd } from '../rendezvous/relay-end.ts';
import { KeyCount } from '../util/key-count.ts';

/**
 * The relayed transport of the end-to-end path (docs/p2p.md §9): the gateway pairs a dk connect
 * client's connection with its agent's by a token it made for that pair, and moves raw bytes both
 * ways, as hbbr does. The bytes are the end-to-end link's records: the gateway cannot read them.
 * Unlike hbbr, only tokens the gateway handed out pair (each once, within `pairTimeoutMs`), each
 * side at most once, and every table is capped (in total and per user).
 */
export interface E2eRelayInit {
  maxPending: number;
  maxPendingPerUser: number;
  /** Relays of one user, waiting or paired: a pair lives while it carries bytes, so this is what bounds a user's share of maxPairs. */
  maxPairsPerUser: number;
  maxPairs: number;
  pairTimeoutMs: number;
  idleTimeoutMs: number;
  onPaired?: (user: string) => void;
  onEnd?: (user: string, reason: PipeEndReason, bytes: number) => void;
}

// maxPairsPerUser: a dk connect link uses one relay at a time, and a user holds max_links_per_user (64) links; twice that covers the moves.
export const E2E_RELAY_DEFAULTS = { maxPending: 4096, maxPendingPerUser: 64, maxPairsPerUser: 128, maxPairs: 8192, pairTimeoutMs: 15_000, idleTimeoutMs: 300_000 } as const;

interface Pending {
  readonly user: string;
  readonly timer: NodeJS.Timeout;
  waiting: { side: RelaySide; socket: Socket; early: Buffer[] } | null;
}

export class E2eRelay {
  readonly #init: E2eRelayInit;
  readonly #pending = new Map<string, Pending>();
  readonly #perUser = new KeyCount();
  /** Per user: pending tokens and live pairs together. */
  readonly #heldPerUser = new KeyCount();
  readonly #pairs = new Set<RelayPipe>();
  readonly #sweep: NodeJS.Timeout;

  constructor(init: Partial<E2eRelayInit> = {}) {
    this.#init = { ...E2E_RELAY_DEFAULTS, ...init };
    this.#sweep = setInterval(() => { for (const p of this.#pairs) p.checkIdle(this.#init.idleTimeoutMs); }, Math.min(30_000, this.#init.idleTimeoutMs));
    this.#sweep.unref();
  }

  get pendingCount(): number {
    return this.#pending.size;
  }
  /** Pending pairs one side of which has joined. */
  get halfJoined(): number {
    let n = 0;
    for (const p of this.#pending.values()) if (p.waiting) n++;
    return n;
  }
  get pairCount(): number {
    return this.#pairs.size;
  }

  /** Bytes the relay holds for its live pairs (both ends' write queues): bounded by backpressure. */
  queued(): number {
    let n = 0;
    for (const p of this.#pairs) n += p.queued();
    return n;
  }

  /** A token for one new pair of `user`'s, or null when a cap is reached. */
  expect(user: string): Buffer | null {
    if (this.#pending.size >= this.#init.maxPending || this.#pairs.size >= this.#init.maxPairs) return null;
    if (!this.#heldPerUser.take(user, this.#init.maxPairsPerUser)) return null;
    if (!this.#perUser.take(user, this.#init.maxPendingPerUser)) {
      this.#heldPerUser.give(user);
      return null;
    }
    const token = randomBytes(16);
    const key = token.toString('hex');
    const timer = setTimeout(() => this.#forget(key, true), this.#init.pairTimeoutMs);
    timer.unref();
    this.#pending.set(key, { user, timer, waiting: null });
    return token;
  }

  /**
   * A connection whose first bytes (`head`, at least the magic) say it joins a relay. Returns
   * false (having destroyed it) when it is not a join of a pending pair; true once it is held or paired.
   */
  join(socket: Socket, head: Buffer): boolean {
    if (head.length < RELAY_HEADER_BYTES) {
      socket.destroy();
      return false;
    }
    let side: RelaySide;
    let key: string;
    try {
      const h = decodeRelayHeader(head.subarray(0, RELAY_HEADER_BYTES));
      side = h.side;
      key = h.token.toString('hex');
    } catch {
      socket.destroy();
      return false;
    }
    const p = this.#pending.get(key);
    if (!p || p.waiting?.side === side) {
      socket.destroy();
      return false;
    }
    socket.pause();
    socket.setNoDelay(true);
    const early = head.length > RELAY_HEADER_BYTES ? [head.subarray(RELAY_HEADER_BYTES)] : [];
    if (!p.waiting) {
      p.waiting = { side, socket, early };
      socket.once('close', () => { if (this.#pending.get(key) === p && p.waiting?.socket === socket) this.#forget(key, true); });
      return true;
    }
    const w = p.waiting;
    this.#forget(key, false, true);
    const user = p.user;
    const pipe: RelayPipe = new RelayPipe({
      a: new TcpEnd(w.socket), b: new TcpEnd(socket), earlyA: w.early, earlyB: early,
      maxMessageSize: 1 << 20, closeGraceMs: 2000,
      onEnd: (reason, s) => {
        this.#pairs.delete(pipe);
        this.#heldPerUser.give(user);
        this.#init.onEnd?.(user, reason, s.bytesAtoB + s.bytesBtoA);
      },
    });
    if (!pipe.ended) this.#pairs.add(pipe);
    this.#init.onPaired?.(user);
    return true;
  }

  close(): void {
    clearInterval(this.#sweep);
    for (const key of [...this.#pending.keys()]) this.#forget(key, true);
    for (const p of [...this.#pairs]) p.close();
  }

  /** A pending token gone: unpaired (its user's place is free again), or `paired` (the pair holds the place until it ends). */
  #forget(key: string, dropWaiting: boolean, paired = false): void {
    const p = this.#pending.get(key);
    if (!p) return;
    this.#pending.delete(key);
    clearTimeout(p.timer);
    this.#perUser.give(p.user);
    if (!paired) this.#heldPerUser.give(p.user);
    if (dropWaiting) p.waiting?.socket.destroy();
  }
}
