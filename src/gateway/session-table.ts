import type { GatewayConfig } from '../config/gateway-config.ts';
import { SessionLimitError } from '../mux/mux.ts';
import type { CloseReason, MuxSession } from '../mux/session.ts';
import type { Logger } from '../util/log.ts';
import { KeyCount } from '../util/key-count.ts';
import type { AgentLink } from './agents.ts';
import type { ClientEnd } from './client-end.ts';
import type { FailureLog } from './failure-log.ts';
import type { GatewayMetrics } from './metrics.ts';
import type { AuditRepo } from './stores.ts';

/** A tunnelled TCP connection in progress. */
export interface LiveSession {
  key: string;
  kind: 'grant' | 'expose' | 'connect';
  backend: string;
  grantId: string | null;
  user: string | null;
  clientIp: string;
  clientPort: number;
  accessPort: number;
  target: string;
  startedAt: number;
  /** The agent's side: bytes each way are counted here. */
  session: MuxSession;
  client: ClientEnd;
}

export interface SessionSpec {
  kind: LiveSession['kind'];
  grantId: string | null;
  user: string | null;
  clientIp: string;
  accessPort: number;
  host: string;
  port: number;
}

export interface SessionTableInit {
  config: Pick<GatewayConfig, 'max_sessions_per_user'>;
  metrics: GatewayMetrics;
  log: Logger;
  audit: (e: Parameters<AuditRepo['write']>[0]) => void;
  /** Refusals of authenticated peers, aggregated (the gateway's refusal log). */
  refusals: FailureLog;
  /** A session that belonged to a grant ended. */
  onGrantSessionEnded: (grantId: string) => void;
}

/**
 * Live sessions: each joins a client's end to a session on an agent's link. Owns the caps that
 * hold per user (max_sessions_per_user, checked before the link's own max_sessions_per_link), the
 * session counters and the audit row written when a session ends.
 */
export class SessionTable {
  readonly #live = new Map<string, LiveSession>();
  /** Bytes of sessions that have ended, for the dashboard's traffic series (traffic-series.ts). */
  readonly ended = { up: 0, down: 0 };
  readonly #perUser = new KeyCount();
  readonly #init: SessionTableInit;
  /** drain() callers, told when the last session ends. */
  #emptied: (() => void)[] = [];

  constructor(init: SessionTableInit) {
    this.#init = init;
  }

  get size(): number {
    return this.#live.size;
  }
  values(): IterableIterator<LiveSession> {
    return this.#live.values();
  }
  get(key: string): LiveSession | undefined {
    return this.#live.get(key);
  }

  /**
   * Opens a session on the agent's link and joins the client's end to it. Returns null, having
   * closed the client's end, when the user or the link is at its cap.
   */
  start(client: ClientEnd, link: AgentLink, s: SessionSpec): LiveSession | null {
    const { metrics, refusals, config } = this.#init;
    // Per user before per link: one user's sessions cannot fill the agent's link for everyone.
    if (s.user !== null && !this.#perUser.take(s.user, config.max_sessions_per_user)) {
      metrics.connectionsRefused.inc({ reason: 'user_session_cap' });
      refusals.fail(`user ${s.user}`, 'max_sessions_per_user');
      client.close();
      return null;
    }
    const user = s.user;
    const giveBack = (): void => { if (user !== null) this.#perUser.give(user); };
    let session: MuxSession;
    try {
      session = link.mux.open(s.port, s.host);
    } catch (e) {
      giveBack();
      if (!(e instanceof SessionLimitError)) throw e;
      metrics.connectionsRefused.inc({ reason: 'session_cap' });
      refusals.fail(`backend ${link.name}`, 'max_sessions_per_link');
      client.close();
      return null;
    }
    const key = `${link.name}.${session.id.toString(16)}`;
    const target = s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
    const live: LiveSession = {
      key, kind: s.kind, backend: link.name, grantId: s.grantId, user: s.user, clientIp: s.clientIp, clientPort: client.port,
      accessPort: s.accessPort, target, startedAt: Date.now(), session, client,
    };
    this.#live.set(key, live);
    metrics.sessionsTotal.inc({ kind: s.kind, backend: metrics.backends.label(link.name) });
    metrics.sessionsActive.set(this.#live.size);
    this.#init.log.debug({ session: key, client: s.clientIp, target }, 'session open');
    client.join(session, (reason) => this.#ended(live, reason, giveBack));
    return live;
  }

  #ended(live: LiveSession, reason: CloseReason, giveBack: () => void): void {
    const { metrics } = this.#init;
    this.#live.delete(live.key);
    giveBack();
    if (this.#live.size === 0) for (const done of this.#emptied.splice(0)) done();
    if (live.grantId) this.#init.onGrantSessionEnded(live.grantId);
    metrics.sessionsActive.set(this.#live.size);
    const backend = metrics.backends.label(live.backend);
    metrics.bytes.inc({ direction: 'up', backend }, live.session.bytesOut);
    this.ended.up += live.session.bytesOut;
    this.ended.down += live.session.bytesIn;
    metrics.bytes.inc({ direction: 'down', backend }, live.session.bytesIn);
    this.#init.audit({
      event: 'session', user: live.user, clientIp: live.clientIp, backend: live.backend, target: live.target, grantId: live.grantId,
      sessionId: live.session.id, bytesUp: live.session.bytesOut, bytesDown: live.session.bytesIn,
      detail: `${live.kind} ${reason} ${Date.now() - live.startedAt}ms`,
    });
  }

  /** Ends a session at once, both sides. */
  kill(s: LiveSession): void {
    s.session.close();
    s.client.close();
  }

  killAll(): void {
    for (const s of [...this.#live.values()]) this.kill(s);
  }

  /** Resolves once no session is left, or after `ms`, whichever is first (graceful shutdown). */
  drain(ms: number): Promise<void> {
    if (this.#live.size === 0 || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#emptied.push(done);
    });
  }
}
