/** One open server-sent-events stream, as the hub sees it. */
export interface EventSink {
  /** Writes raw SSE text; resolves when it was taken (backpressure: the hub waits for it). */
  write(text: string): Promise<void>;
  /** Ends the stream. */
  close(): void;
}

export interface EventHubInit {
  /** Streams open at most, all users together. */
  maxTotal?: number;
  /** Streams one user holds open at most. */
  maxPerUser?: number;
  /** How often each stream's state is checked, and sent if it changed. */
  tickMs?: number;
  /** A comment line after this long without a write, so proxies and browsers keep the stream. */
  heartbeatMs?: number;
  /** What a user sees now (JSON-able), or null when the user no longer exists (the stream ends). */
  snapshot: (user: string) => unknown;
  /** False once the web session a stream belongs to has ended (expired): the stream ends too. */
  alive?: (session: string) => boolean;
  now?: () => number;
}

interface Sub {
  readonly session: string;
  readonly user: string;
  readonly sink: EventSink;
  last: string;
  lastWrite: number;
  busy: boolean;
}

/** `event: NAME` and `data:` lines; data is JSON, so it holds no newline. */
export function sseEvent(event: string, json: string): string {
  return `event: ${event}\ndata: ${json}\n\n`;
}

/**
 * The dashboard's live updates (GET /api/v1/events): one timer for every open stream, running
 * only while one is open. Each tick, each user's state is built once and sent on that user's
 * streams where it changed since their last write; a stream still writing is skipped (a slow
 * reader gets fewer updates, never a queue). Streams are capped in total and per user.
 */
export class EventHub {
  readonly #subs = new Set<Sub>();
  readonly maxTotal: number;
  readonly maxPerUser: number;
  readonly tickMs: number;
  readonly heartbeatMs: number;
  readonly #snapshot: (user: string) => unknown;
  readonly #alive: (session: string) => boolean;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | null = null;

  constructor(init: EventHubInit) {
    this.maxTotal = init.maxTotal ?? 64;
    this.maxPerUser = init.maxPerUser ?? 4;
    this.tickMs = init.tickMs ?? 1000;
    this.heartbeatMs = init.heartbeatMs ?? 15_000;
    this.#snapshot = init.snapshot;
    this.#alive = init.alive ?? (() => true);
    this.#now = init.now ?? Date.now;
  }

  get size(): number {
    return this.#subs.size;
  }

  /** Which cap a new stream for `user` would break, or null if it may open. */
  refusal(user: string): 'total' | 'user' | null {
    if (this.#subs.size >= this.maxTotal) return 'total';
    let mine = 0;
    for (const s of this.#subs) if (s.user === user) mine++;
    return mine >= this.maxPerUser ? 'user' : null;
  }

  /** Adds a stream and sends it the state at once; or says which cap refused it. */
  add(session: string, user: string, sink: EventSink): { remove(): void } | { refused: 'total' | 'user' } {
    const refused = this.refusal(user);
    if (refused) return { refused };
    const sub: Sub = { session, user, sink, last: '', lastWrite: this.#now(), busy: false };
    this.#subs.add(sub);
    if (!this.#timer) {
      this.#timer = setInterval(() => this.tick(), this.tickMs);
      this.#timer.unref();
    }
    this.tick(new Map(), sub);
    return { remove: () => this.#remove(sub) };
  }

  /** Ends the streams of these web sessions (logout, expiry, user removed). */
  closeSessions(ids: Iterable<string>): void {
    const set = new Set(ids);
    for (const s of [...this.#subs]) if (set.has(s.session)) this.#end(s);
  }

  closeAll(): void {
    for (const s of [...this.#subs]) this.#end(s);
  }

  /** One round: state where it changed, heartbeats where quiet. Exposed for tests. */
  tick(cache = new Map<string, string | null>(), only?: Sub): void {
    const now = this.#now();
    for (const s of only ? [only] : [...this.#subs]) {
      if (s.busy) continue;
      if (!this.#alive(s.session)) {
        this.#end(s);
        continue;
      }
      let json = cache.get(s.user);
      if (json === undefined) {
        const snap = this.#snapshot(s.user);
        json = snap === null ? null : JSON.stringify(snap);
        cache.set(s.user, json);
      }
      if (json === null) {
        this.#end(s);
        continue;
      }
      let text: string | null = null;
      if (json !== s.last) {
        text = sseEvent('state', json);
        s.last = json;
      } else if (now - s.lastWrite >= this.heartbeatMs) {
        text = ': heartbeat\n\n';
      }
      if (text === null) continue;
      s.busy = true;
      s.lastWrite = now;
      s.sink.write(text).then(() => { s.busy = false; }, () => this.#end(s));
    }
  }

  #end(s: Sub): void {
    if (!this.#remove(s)) return;
    s.sink.close();
  }

  #remove(s: Sub): boolean {
    if (!this.#subs.delete(s)) return false;
    if (this.#subs.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
    return true;
  }
}
