import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { GatewayConfig } from '../config/gateway-config.ts';
import { ConnectRequest, readLine, type ConnectReply } from '../connect/protocol.ts';
import type { LinkStream } from '../link/stream.ts';
import { Mux } from '../mux/mux.ts';
import { Feature } from '../protocol/index.ts';
import type { Logger } from '../util/log.ts';
import { KeyCount } from '../util/key-count.ts';
import type { AgentService } from './agent-service.ts';
import type { E2eService } from './e2e-service.ts';
import type { AuditEvent } from './audit.ts';
import type { AgentLink } from './agents.ts';
import type { AuthGuard } from './auth-guard.ts';
import { authorize } from './authorize.ts';
import type { Backends } from './backends.ts';
import { muxEnd, streamEnd } from './client-end.ts';
import type { FailureLog } from './failure-log.ts';
import type { GatewayMetrics } from './metrics.ts';
import type { SessionTable } from './session-table.ts';
import type { User } from './users.ts';
import type { UserRepo } from './stores.ts';

export interface ConnectServiceInit {
  config: Pick<GatewayConfig, 'handshake' | 'max_links_per_user' | 'max_sessions_per_link' | 'window' | 'window_max'>;
  users: UserRepo;
  backends: Backends;
  agents: AgentService;
  sessions: SessionTable;
  auth: AuthGuard;
  metrics: GatewayMetrics;
  log: Logger;
  refusals: FailureLog;
  e2e: E2eService;
  audit: (e: AuditEvent) => void;
}

/**
 * `dk connect` links (purpose 2): one JSON request line with an API token and a target, one JSON
 * answer, then either the DK mux (one session per local connection, `mux: true`) or the session's
 * bytes (the older form). Authorization is the token's, checked again for every session, so it is
 * safe behind shared NATs (SPEC §3); failures count like the API's (AuthGuard).
 */
export class ConnectService {
  /** The muxes of live `dk connect` links (by their link stream). */
  readonly muxes = new Map<Duplex, Mux>();
  /** dk connect clients on the gateway's path (with mux), for GET /api/v1/links. */
  readonly gatewayClients = new Map<LinkStream, { id: string; user: string; backend: string; target: string; client_ip: string; since: number }>();
  readonly #links = new KeyCount();
  readonly #init: ConnectServiceInit;
  #clientIds = 0;

  constructor(init: ConnectServiceInit) {
    this.#init = init;
  }

  async accept(stream: LinkStream, ip: string, authenticated: () => void): Promise<void> {
    const { config, auth, metrics, log } = this.#init;
    stream.on('error', () => undefined);
    // Attached once before it was handed here: each 'attached' now is a resume.
    stream.on('attached', () => metrics.linkResumes.inc({ kind: 'connect' }));
    const refuse = (code: string, message: string): void => {
      const r: ConnectReply = { ok: false, code, message };
      stream.end(JSON.stringify(r) + '\n');
      if (code !== 'unauthorized' && code !== 'too_many_failures') log.info({ client: ip, code }, 'dk connect refused');
    };
    const blocked = auth.blocked(ip);
    if (blocked) return refuse('too_many_failures', blocked.message);
    let req: ConnectRequest;
    try {
      const parsed = ConnectRequest.safeParse(JSON.parse(await readLine(stream, config.handshake * 1000)));
      if (!parsed.success) return refuse('bad_request', parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
      req = parsed.data;
    } catch (e) {
      return refuse('bad_request', `expected one JSON request line: ${(e as Error).message}`);
    }
    const user = this.#init.users.byToken(req.token);
    if (!user) {
      auth.failed(ip, null, 'connect_token');
      metrics.apiAuthFailures.inc();
      return refuse('unauthorized', 'unknown API token');
    }
    authenticated();
    if (!this.#links.take(user.name, config.max_links_per_user)) {
      metrics.connectionsRefused.inc({ reason: 'links_per_user' });
      return refuse('too_many_links', `user "${user.name}" has ${config.max_links_per_user} dk connect links open already (max_links_per_user)`);
    }
    stream.once('close', () => this.#links.give(user.name));
    const host = req.host ?? '127.0.0.1';
    if (isIP(host) === 0) return refuse('bad_request', 'host must be an IP address');
    if (!this.#init.backends.has(req.backend)) return refuse('not_found', `backend "${req.backend}" not found`);
    const target = this.#target(user, req.backend, host, req.port);
    if ('code' in target) return refuse(target.code, target.message);
    let why: string | undefined;
    if (req.mux && req.e2e) {
      const offer = await this.#init.e2e.offer({ user: user.name, backend: req.backend, host, port: req.port, req: req.e2e, link: target.link });
      if ('grant' in offer) {
        const ok: ConnectReply = { ok: true, e2e: offer.grant };
        stream.write(JSON.stringify(ok) + '\n');
        const id = (++this.#clientIds).toString(36);
        log.info({ client: ip, user: user.name, backend: req.backend, target: `${host}:${req.port}`, direct: offer.grant.direct }, 'dk connect: end-to-end link authorized');
        // The gateway sees no session of an end-to-end link (the agent logs each): it audits the authorization.
        this.#init.audit({ event: 'e2e_link', user: user.name, clientIp: ip, backend: req.backend, target: `${host}:${req.port}`, detail: `ticket ${offer.ticketId}${offer.grant.direct ? '' : ' relay only'}` });
        this.#init.e2e.serve(stream, {
          id, user: user.name, backend: req.backend, target: `${host}:${req.port}`, ip, ticketId: offer.ticketId, direct: offer.grant.direct,
          // Every request checks again that the token still names a user who may reach the target.
          agent: () => this.#init.agents.online(req.backend),
          allowed: () => {
            const u = this.#init.users.byToken(req.token);
            return u !== null && authorize(u, { backend: req.backend, host, port: req.port }) === null;
          },
        });
        return;
      }
      why = offer.why;
    }
    if (req.mux) {
      // The gateway's path; a client that asked for the end-to-end one is told why not.
      const ok: ConnectReply = { ok: true, ...(why ? { why } : {}) };
      stream.write(JSON.stringify(ok) + '\n');
      this.#serveMux(stream, ip, req, user.name);
      return;
    }
    if (target.link.mux.sessions.size >= config.max_sessions_per_link) {
      metrics.connectionsRefused.inc({ reason: 'session_cap' });
      return refuse('session_cap', `backend "${req.backend}" already carries ${config.max_sessions_per_link} sessions (max_sessions_per_link); retry when some end`);
    }
    const live = this.#init.sessions.start(streamEnd(stream, stream.remotePort ?? 0), target.link, {
      kind: 'connect', grantId: null, user: user.name, clientIp: ip, accessPort: 0, host, port: req.port,
    });
    if (live === null) return;
    const ok: ConnectReply = { ok: true, session: live.key };
    stream.write(JSON.stringify(ok) + '\n');
  }

  /** The agent link a `dk connect` user may reach host:port through now, or why not. */
  #target(user: User, backend: string, host: string, port: number): { link: AgentLink } | { code: string; message: string } {
    const refused = authorize(user, { backend, host, port });
    if (refused) return { code: 'forbidden', message: refused };
    const link = this.#init.agents.online(backend);
    if (!link) return { code: 'backend_offline', message: `backend "${backend}" has no agent online` };
    // What the agent told us it would refuse is refused here, with the reason, instead of a reset.
    const check = link.allowlist.check(host, port);
    if (check.verdict === 'refused') return { code: 'refused_by_allowlist', message: `backend "${backend}"'s agent would refuse ${host}:${port}: ${check.reason}` };
    return { link };
  }

  /**
   * A `dk connect` link that multiplexes its connections: the client opens one mux session per
   * local connection. Each is checked again (the token still names a user who may reach that
   * target, the backend is online) and spliced to a session on the agent's link. A token that no
   * longer authenticates ends the whole link, so the client's next connection learns why.
   */
  #serveMux(stream: LinkStream, ip: string, req: ConnectRequest, userName: string): void {
    const { config, metrics, log, refusals } = this.#init;
    this.gatewayClients.set(stream, { id: `g${(++this.#clientIds).toString(36)}`, user: userName, backend: req.backend, target: `${req.host ?? '127.0.0.1'}:${req.port}`, client_ip: ip, since: Date.now() });
    const mux: Mux = new Mux(stream, {
      role: 'agent',
      maxSessions: config.max_sessions_per_link,
      onRefuse: (reason) => metrics.sessionsRefused.inc({ reason }),
      window: config.window,
      windowMax: config.window_max,
      features: Feature.FLOW | Feature.PONG,
      keepaliveMs: 0,
      deadAfterMs: 0,
      onOpen: (session, port, host) => {
        const user = this.#init.users.byToken(req.token);
        if (!user) {
          log.info({ client: ip }, 'dk connect: token no longer valid; link closed');
          mux.destroy();
          return;
        }
        const target = this.#target(user, req.backend, host, port);
        if ('code' in target) {
          metrics.connectionsRefused.inc({ reason: target.code });
          refusals.fail(`user ${user.name}`, `connect_${target.code} ${host}:${port}`);
          session.close();
          return;
        }
        this.#init.sessions.start(muxEnd(session, stream.remotePort ?? 0), target.link, {
          kind: 'connect', grantId: null, user: user.name, clientIp: ip, accessPort: 0, host, port,
        });
      },
      onClose: (err) => {
        this.muxes.delete(stream);
        this.gatewayClients.delete(stream);
        log.debug({ client: ip, err: err?.message }, 'dk connect link ended');
      },
    });
    this.muxes.set(stream, mux);
    stream.resume(); // readLine paused it
  }
}
