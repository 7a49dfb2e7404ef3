import type { Socket } from 'node:net';
import type { GatewayConfig } from '../config/gateway-config.ts';
import { normalizeIp } from '../protocol/index.ts';
import type { Logger } from '../util/log.ts';
import type { AccessPorts } from './access-ports.ts';
import type { AgentService } from './agent-service.ts';
import { authorize } from './authorize.ts';
import type { Backends } from './backends.ts';
import { streamEnd } from './client-end.ts';
import { ApiError, forbidden, notFound } from './errors.ts';
import { GrantTable, type Grant, type GrantEnd } from './grants.ts';
import type { GatewayMetrics } from './metrics.ts';
import type { SessionTable } from './session-table.ts';
import type { AuditRepo, GrantRepo } from './stores.ts';
import type { User } from './users.ts';

/** A grant, and what the caller should know about it: the backend is offline, the target could not be checked. */
export interface AccessResult {
  grant: Grant;
  warnings: string[];
}

/** The most a grant's idle deadline on disk lags behind the one in memory after a session ends. */
const SAVE_STEP_MS = 1000;

export interface GrantServiceInit {
  config: Pick<GatewayConfig, 'idle_close' | 'auth_time' | 'max_grants_per_user'>;
  repo: GrantRepo;
  backends: Backends;
  agents: AgentService;
  ports: AccessPorts;
  sessions: SessionTable;
  metrics: GatewayMetrics;
  log: Logger;
  audit: (e: Parameters<AuditRepo['write']>[0]) => void;
}

/**
 * Grants (SPEC §3) and what they lead to: asking for access opens (or reuses) an access port, a
 * connection from the grant's address becomes a session, deadlines end grants, and every deadline
 * is kept on disk (so it holds across a restart). The rules themselves are GrantTable's.
 */
export class GrantService {
  readonly table: GrantTable;
  readonly #init: GrantServiceInit;
  #lock: Promise<unknown> = Promise.resolve();
  /** Set at shutdown, once every grant with sessions was saved: the sessions' ends come later. */
  #stopped = false;

  constructor(init: GrantServiceInit) {
    this.#init = init;
    this.table = new GrantTable(init.config.idle_close * 1000, init.config.auth_time * 1000);
  }

  /** After a restart: the grants still valid, with their access ports open again. */
  async restore(): Promise<void> {
    const { ports } = this.#init;
    for (const g of this.#init.repo.loadValid(Date.now())) {
      this.table.restore(g);
      if (!(await ports.open(g.accessPort))) this.#init.log.warn({ port: g.accessPort, grant: g.id }, 'could not reopen access port of a restored grant');
    }
  }

  /**
   * SPEC §3 step 3: records a grant and opens (or reuses) an access port. Serialized. A target the
   * backend's agent told us it would refuse (ALLOWLIST) is refused here, 409, instead of being
   * reset when used; a backend that is offline, or whose agent did not tell its allowlist, still
   * gets its grant, with a warning. The audit log says which of these happened.
   */
  request(user: User, clientIp: string, backend: string, host: string, port: number): Promise<AccessResult> {
    const run = async (): Promise<AccessResult> => {
      const { ports } = this.#init;
      if (!this.#init.backends.has(backend)) throw notFound(`backend "${backend}"`);
      const refused = authorize(user, { backend, host, port });
      if (refused) throw forbidden(refused);
      const target = `${host}:${port}`;
      const link = this.#init.agents.online(backend);
      const check = link?.allowlist.check(host, port);
      if (check?.verdict === 'refused') {
        this.#init.audit({ event: 'grant.refused', user: user.name, clientIp, backend, target, detail: `refused_by_allowlist: ${check.reason}` });
        this.#init.log.info({ user: user.name, backend, target }, 'access refused: the agent would refuse this target');
        throw new ApiError(409, 'refused_by_allowlist', `backend "${backend}"'s agent would refuse ${target}: ${check.reason}; ask for a target it allows, or add it to the agent's lan_nets`);
      }
      const warnings: string[] = [];
      if (!link) warnings.push(`backend "${backend}" is offline (no agent connected): connections are closed until its agent connects, and the target could not be checked against its allowlist`);
      else if (check?.verdict === 'unknown') warnings.push(`${target} could not be checked against backend "${backend}"'s allowlist: ${check.why}`);
      const outcome = !link ? 'backend_offline' : check?.verdict === 'unknown' ? 'granted_unchecked' : 'granted';
      const req = { userId: user.id, userName: user.name, clientIp, backend, host, port };
      const existing = this.table.existing(req);
      if (existing && ports.has(existing.accessPort)) {
        this.#init.repo.save(existing);
        return { grant: existing, warnings };
      }
      const held = this.table.all().filter((g) => g.userName === user.name).length;
      if (held >= this.#init.config.max_grants_per_user) {
        throw new ApiError(429, 'too_many_grants', `user "${user.name}" holds ${held} grants (max_grants_per_user); revoke one (DELETE /api/v1/grants/ID) or let one expire`);
      }
      let accessPort = this.table.reusablePort(clientIp, ports.ports());
      if (accessPort === null) {
        accessPort = await ports.openNext();
        if (accessPort === null) throw new ApiError(503, 'no_access_port', 'every access port is in use; try again when grants expire, or widen access_ports');
      }
      const g = this.table.create(req, accessPort);
      this.#init.repo.save(g);
      this.#init.audit({ event: 'grant', user: user.name, clientIp, backend, target, grantId: g.id, detail: `${outcome}; access_port ${accessPort}` });
      this.#init.log.info({ grant: g.id, user: user.name, client: clientIp, backend, target, access_port: accessPort, outcome }, 'grant created');
      return { grant: g, warnings };
    };
    const p = this.#lock.then(run, run);
    this.#lock = p.catch(() => undefined);
    return p;
  }

  revoke(id: string, by: string): Grant {
    const g = this.table.get(id);
    if (!g) throw notFound(`grant ${id}`);
    this.#end(g, 'revoked', by);
    this.#closeIdlePorts();
    return g;
  }

  /** A connection on an access port (SPEC §3): the grant for its source address, or nothing. */
  onConnection(port: number, socket: Socket): void {
    const { metrics, log } = this.#init;
    const ip = normalizeIp(socket.remoteAddress);
    socket.on('error', () => undefined);
    const grant = this.table.lookup(port, ip);
    // SPEC §3: no grant for this source IP on this port → close at once: not a byte, not a hint.
    if (!grant) {
      metrics.connectionsRefused.inc({ reason: 'no_grant' });
      socket.destroy();
      return;
    }
    const link = this.#init.agents.online(grant.backend);
    if (!link) {
      metrics.connectionsRefused.inc({ reason: 'backend_offline' });
      log.info({ grant: grant.id, backend: grant.backend }, 'access refused: backend offline');
      socket.destroy();
      return;
    }
    this.table.sessionStarted(grant.id);
    const live = this.#init.sessions.start(streamEnd(socket, socket.remotePort ?? 0), link, {
      kind: 'grant', grantId: grant.id, user: grant.userName, clientIp: ip, accessPort: port, host: grant.host, port: grant.port,
    });
    if (live === null) this.table.sessionEnded(grant.id);
  }

  /**
   * A grant's session ended: its idle deadline starts now, in memory and on disk — written when it
   * moved by a second or more, so a grant that serves thousands of short connections a second
   * costs one write a second, not one per connection (a write per close cost a third of the new
   * connections per second in a bench run), and the deadline on disk lags by less than a second.
   */
  sessionEnded(id: string): void {
    this.table.sessionEnded(id);
    const g = this.table.get(id);
    if (g && this.table.dueForSave(g, SAVE_STEP_MS)) this.#save(g);
  }

  /** Deadlines: moves those of grants in use (saved every idle_close/2), ends idle and expired grants, closes ports nobody holds. */
  sweep(): void {
    for (const g of this.table.refreshActive()) this.#save(g);
    for (const { grant, why } of this.table.sweep()) this.#end(grant, why);
    this.#closeIdlePorts();
  }

  /** Shutdown: saves the deadline every grant in use earned, before its sessions are cut. */
  saveForStop(): void {
    this.table.refreshActive();
    for (const g of this.table.all()) if (this.table.activeSessions(g.id) > 0) this.#save(g);
    this.#stopped = true;
  }

  #end(g: Grant, why: GrantEnd, by?: string): void {
    const { sessions } = this.#init;
    this.table.remove(g.id);
    this.#init.repo.delete(g.id);
    for (const s of [...sessions.values()]) if (s.grantId === g.id) sessions.kill(s);
    this.#init.audit({ event: `grant.${why}`, user: g.userName, clientIp: g.clientIp, backend: g.backend, target: `${g.host}:${g.port}`, grantId: g.id, detail: by ? `by ${by}` : null });
    this.#init.log.info({ grant: g.id, why, user: g.userName, backend: g.backend, ...(by ? { by } : {}) }, why === 'revoked' ? 'grant revoked' : 'grant ended');
  }

  #closeIdlePorts(): void {
    const { ports, sessions } = this.#init;
    const used = this.table.portsInUse();
    for (const s of sessions.values()) if (s.kind === 'grant') used.add(s.accessPort);
    for (const p of ports.ports()) if (!used.has(p)) ports.close(p);
  }

  #save(g: Grant): void {
    if (this.#stopped) return;
    try {
      this.#init.repo.save(g);
    } catch (err) {
      this.#init.log.error({ err, grant: g.id }, 'could not save a grant deadline');
    }
  }
}
