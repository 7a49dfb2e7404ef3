import type { Duplex } from 'node:stream';
import { accessRange, type GatewayConfig } from '../config/gateway-config.ts';
import type { KeyPair } from '../link/crypto.ts';
import { loadOrCreateStaticKey } from '../link/keys.ts';
import type { LinkServer } from '../link/server.ts';
import type { Mux } from '../mux/mux.ts';
import { rendezvousPorts } from '../config/rendezvous-config.ts';
import { Rendezvous } from '../rendezvous/rendezvous.ts';
import { openSqliteStores } from '../store/sqlite-stores.ts';
import { NetSet } from '../util/cidr.ts';
import type { Logger } from '../util/log.ts';
import { PortSet } from '../util/port-range.ts';
import { AccessPorts } from './access-ports.ts';
import { AgentService } from './agent-service.ts';
import type { AgentRegistry } from './agents.ts';
import type { ApiDeps, SessionView } from './api/deps.ts';
import { AuthGuard } from './auth-guard.ts';
import { Backends, bootstrap, type FirstRun } from './backends.ts';
import { ConnectService } from './connect-service.ts';
import { E2eService } from './e2e-service.ts';
import { loadOrCreateTicketKey } from './ticket-key.ts';
import { notFound } from './errors.ts';
import { FailureLog } from './failure-log.ts';
import { GrantService } from './grant-service.ts';
import type { GrantTable } from './grants.ts';
import { Listeners } from './listeners.ts';
import { GatewayMetrics } from './metrics.ts';
import { ServPort } from './serv-port.ts';
import { SessionTable, type LiveSession } from './session-table.ts';
import { StaticTunnels } from './static-tunnels.ts';
import { TrafficSeries, type TrafficTotals } from './traffic-series.ts';
import type { AuditRepo, GatewayStores, UserRepo } from './stores.ts';

export type { FirstRun } from './backends.ts';
export type { LiveSession } from './session-table.ts';

/** Opens the gateway's state in its data dir (the embedded default: SQLite). */
export type OpenStores = (dataDir: string, onAuditError: (err: unknown) => void) => GatewayStores;

/**
 * The gateway, as a composition root: it builds the owners, each with one job, and wires them.
 *
 * - ServPort: serv_port, pre-authentication limits, link and agent handshakes.
 * - AgentService: authenticated agents, their muxes, their commands, scans.
 * - Listeners: every port opened on demand — AccessPorts and StaticTunnels keep theirs there.
 * - SessionTable: live sessions, client end to agent session, caps per user and per link.
 * - GrantService: grants, access, deadlines (on disk).
 * - ConnectService: `dk connect` links.
 * - Rendezvous (src/rendezvous/): the RustDesk-compatible rendezvous and relay, when configured.
 * - The stores (users, grants, audit, backends, replay seeds) are opened first and injected.
 *
 * docs/architecture.md has the map and says which file to open for which change.
 */
export class Gateway {
  readonly config: GatewayConfig;
  readonly log: Logger;
  readonly metrics: GatewayMetrics;
  readonly auth: AuthGuard;
  readonly users: UserRepo;
  readonly audit: AuditRepo;
  readonly backends: Backends;
  readonly linkKey: KeyPair;
  readonly first: FirstRun;
  readonly sessions: SessionTable;
  /** Throughput and session count over the last hour, for the dashboard (sampled in sweep()). */
  readonly traffic = new TrafficSeries();
  readonly #stores: GatewayStores;
  readonly #serv: ServPort;
  readonly #listeners: Listeners;
  readonly #access: AccessPorts;
  readonly #tunnels: StaticTunnels;
  readonly #agents: AgentService;
  readonly #grants: GrantService;
  readonly #connect: ConnectService;
  /** End-to-end dk connect links: tickets, relayed transports, punch coordination (docs/p2p.md §9). */
  readonly e2e: E2eService;
  /** What authenticated peers are refused (caps, permissions): the first at once, then one line per user or backend per interval. */
  readonly #refusals: FailureLog;
  /** The RustDesk-compatible rendezvous, or null when rendezvous.port is not set. */
  rendezvous: Rendezvous | null = null;
  #sweeper: NodeJS.Timeout | null = null;
  #lastPrune = 0;
  #lastRdvSweep = 0;

  /**
   * Listens on serv_port, then opens the state, makes first-run secrets and restores grants. The
   * port comes first so that a port in use or a wrong bind address fails before anything is made:
   * first-run secrets are printed once, and a gateway that cannot start would lose them.
   */
  static async start(config: GatewayConfig, log: Logger, o: { openStores?: OpenStores; metrics?: GatewayMetrics } = {}): Promise<Gateway> {
    const metrics = o.metrics ?? new GatewayMetrics();
    const openStores = o.openStores ?? openSqliteStores;
    const auth = new AuthGuard({
      perIp: config.auth_fail_limit, perUser: config.auth_fail_limit_user, userWindowMs: 15 * 60_000,
      logIntervalMs: config.auth_log_interval * 1000, log, metrics,
    });
    const serv = new ServPort({ config, metrics, auth, log });
    await serv.listen();
    let stores: GatewayStores | null = null;
    try {
      stores = openStores(config.data_dir, (err) => log.error({ err }, 'audit write failed'));
      const gw = new Gateway(config, log, metrics, auth, serv, stores, loadOrCreateStaticKey(config.data_dir));
      await gw.#open();
      return gw;
    } catch (e) {
      serv.close();
      stores?.close();
      throw e;
    }
  }

  private constructor(config: GatewayConfig, log: Logger, metrics: GatewayMetrics, auth: AuthGuard, serv: ServPort, stores: GatewayStores, linkKey: KeyPair) {
    this.config = config;
    this.log = log;
    this.metrics = metrics;
    this.auth = auth;
    this.#serv = serv;
    this.#stores = stores;
    this.users = stores.users;
    this.audit = stores.audit;
    this.linkKey = linkKey;
    this.backends = new Backends(stores.backends, config);
    this.first = bootstrap(stores.users, this.backends, config.admin_token);
    metrics.backends.allow(this.backends.names());
    this.#refusals = new FailureLog({
      intervalMs: config.auth_log_interval * 1000,
      write: (f) => log.warn({ who: f.source, count: f.count, reasons: f.reasons }, f.first ? 'refused' : `refused ${f.count} more times`),
    });
    const audit = (e: Parameters<AuditRepo['write']>[0]): void => this.#audit(e);
    // The session table and the access ports call back into the grants, which need both: the
    // callbacks run only once connections arrive, after everything here is built.
    this.sessions = new SessionTable({
      config, metrics, log, audit, refusals: this.#refusals,
      onGrantSessionEnded: (id) => grants.sessionEnded(id),
    });
    this.#listeners = new Listeners(config.bind);
    this.#access = new AccessPorts(this.#listeners, PortSet.parse(accessRange(config)).bounds(), (port, s) => grants.onConnection(port, s));
    this.#tunnels = new StaticTunnels({
      config, listeners: this.#listeners, sessions: this.sessions, backends: this.backends, metrics, log, refusals: this.#refusals,
      reserved: (port) => port === this.#serv.port || this.#access.inRange(port),
    });
    this.e2e = new E2eService({ p2p: config.p2p, maxSessionsPerUser: config.max_sessions_per_user, ticketKey: loadOrCreateTicketKey(config.data_dir), metrics, log });
    this.#agents = new AgentService({ config, backends: this.backends, tunnels: this.#tunnels, metrics, log, onChange: () => this.#updateGauges(), e2e: this.e2e });
    const grants = new GrantService({
      config, repo: stores.grants, backends: this.backends, agents: this.#agents, ports: this.#access, sessions: this.sessions, metrics, log, audit,
    });
    this.#grants = grants;
    this.#connect = new ConnectService({
      config, users: stores.users, backends: this.backends, agents: this.#agents, sessions: this.sessions, auth, metrics, log, refusals: this.#refusals, e2e: this.e2e, audit,
    });
  }

  async #open(): Promise<void> {
    if (rendezvousPorts(this.config.rendezvous)) {
      this.rendezvous = await Rendezvous.start({
        config: this.config.rendezvous, bind: this.config.bind, dataDir: this.config.data_dir, repo: this.#stores.rdvPeers,
        registry: this.metrics.registry, log: this.log, audit: (e) => this.#audit(e),
        trustedProxies: this.config.trusted_proxies.length > 0 ? new NetSet(this.config.trusted_proxies) : null,
      });
    }
    await this.#grants.restore();
    this.#serv.serve({
      backends: this.backends,
      seeds: this.#stores.seeds,
      linkKey: this.linkKey,
      onAgent: (name, conn, remote, rest, overLink) => this.#agents.attach(name, conn, remote, rest, overLink),
      onConnectClient: (stream, ip, authenticated) => void this.#connect.accept(stream, ip, authenticated),
      onRelay: (socket, head) => this.e2e.relay.join(socket, head),
      onCoord: (socket, rest, admitted) => this.e2e.coord(socket, rest, admitted),
    });
    this.#sweeper = setInterval(() => this.sweep(), this.config.sweep_interval * 1000);
    this.#sweeper.unref();
    this.#updateGauges();
    this.log.info({ serv_port: this.servPort, grants: this.grants.all().length, backends: this.backends.names() }, 'gateway listening for agents');
  }

  // ---- views for the CLI, the API and tests

  get servPort(): number {
    return this.#serv.port;
  }
  /** Online agents by backend name. */
  get agents(): AgentRegistry {
    return this.#agents.registry;
  }
  get grants(): GrantTable {
    return this.#grants.table;
  }
  /** The link server (its sessions, live or detached). */
  get link(): LinkServer {
    return this.#serv.link;
  }
  /** The muxes of live `dk connect` links. */
  get connectMuxes(): ReadonlyMap<Duplex, Mux> {
    return this.#connect.muxes;
  }
  accessPorts(): number[] {
    return this.#access.ports().sort((a, b) => a - b);
  }
  exposes(): ReturnType<StaticTunnels['list']> {
    return this.#tunnels.list();
  }
  addBackend(name: string, key: string): void {
    this.backends.add(name, key);
    this.metrics.backends.allow([name]);
  }

  /** What the management API may use (src/gateway/api/deps.ts). */
  api(): ApiDeps {
    const view = (s: LiveSession): SessionView => ({
      key: s.key, kind: s.kind, backend: s.backend, grantId: s.grantId, user: s.user, clientIp: s.clientIp, clientPort: s.clientPort,
      accessPort: s.accessPort, target: s.target, startedAt: s.startedAt, bytesUp: s.session.bytesOut, bytesDown: s.session.bytesIn,
    });
    return {
      config: this.config,
      metrics: this.metrics,
      auth: this.auth,
      users: this.users,
      audit: this.audit,
      health: () => ({ agents_online: this.agents.size, grants: this.grants.all().length, sessions: this.sessions.size }),
      backends: () => this.backends.names().map((name) => {
        const a = this.agents.get(name);
        return {
          name, online: !!a, since: a?.since ?? null, remote: a?.remote ?? null, encrypted: a?.encrypted ?? null, features: a?.mux.features ?? null,
          rttMs: a?.mux.rttMs ?? null, sessions: a?.mux.sessions.size ?? 0, exposes: this.exposes().filter((e) => e.backend === name),
          allowlist: a?.allowlist.rules() ?? null, linkResumes: a?.resumes ?? 0, version: a?.version ?? null,
        };
      }),
      scan: (backend, port) => this.#agents.scan(backend, port),
      links: () => ({
        p2p: this.e2e.mode,
        agents: this.agents.list().map((a) => ({
          backend: a.name, remote: a.remote, since: a.since, encrypted: a.encrypted, rttMs: a.mux.rttMs ?? null, resumes: a.resumes, e2e: a.e2eKey !== null,
        })),
        clients: [
          ...this.e2e.clients.values(),
          // dk connect clients on the gateway's path: the gateway terminates their link, so its RTT is the link's.
          ...[...this.#connect.gatewayClients].map(([stream, c]) => ({
            ...c, path: 'gateway' as const, rtt_ms: stream.rttMs, changes: [], path_changes: 0, relays: 0, punches: { direct: 0, failed: 0 },
          })),
        ],
      }),
      grants: () => this.grants.all(),
      activeSessions: (id) => this.grants.activeSessions(id),
      requestAccess: async (user, ip, backend, host, port) => {
        const r = await this.#grants.request(user, ip, backend, host, port);
        this.#updateGauges();
        return r;
      },
      revokeGrant: (id, by) => {
        const g = this.#grants.revoke(id, by);
        this.#updateGauges();
        return g;
      },
      sessions: () => [...this.sessions.values()].map(view),
      rendezvous: () => {
        const r = this.rendezvous;
        if (!r) return null;
        return {
          info: () => ({
            key: r.keys.keys.publicKeyBase64, enforced: r.enforcedKey !== '', ports: r.ports(),
            peers_in_memory: r.table.size, peers_online: r.table.onlineCount(), peers_stored: r.table.stored,
          }),
          peers: (o) => r.peers(o), deletePeer: (id) => r.deletePeer(id), blocked: () => r.blocked(), block: (ip) => r.block(ip), unblock: (ip) => r.unblock(ip),
        };
      },
      auditWrite: (e) => this.#audit(e),
      traffic: () => this.traffic.samples(),
      killSession: (key) => {
        const s = this.sessions.get(key);
        if (!s) throw notFound(`session ${key}`);
        this.sessions.kill(s);
        return view(s);
      },
    };
  }

  /** Deadlines: grants, failure-log intervals, audit pruning; and the gauges. */
  sweep(): void {
    this.traffic.observe(Date.now(), this.#trafficTotals());
    this.auth.failures.tick();
    this.#refusals.tick();
    this.#grants.sweep();
    this.#updateGauges();
    if (this.rendezvous && Date.now() - this.#lastRdvSweep > 5000) {
      this.#lastRdvSweep = Date.now();
      this.rendezvous.sweep();
    }
    if (Date.now() - this.#lastPrune > 3_600_000) {
      this.#lastPrune = Date.now();
      this.#stores.audit.prune(this.config.audit_days);
    }
  }

  #audit(e: Parameters<AuditRepo['write']>[0]): void {
    try {
      this.#stores.audit.write(e);
    } catch (err) {
      this.log.error({ err }, 'audit write failed');
    }
  }

  #trafficTotals(): TrafficTotals {
    let { up, down } = this.sessions.ended;
    for (const s of this.sessions.values()) {
      up += s.session.bytesOut;
      down += s.session.bytesIn;
    }
    return { up, down, sessions: this.sessions.size };
  }

  #updateGauges(): void {
    this.metrics.agentsOnline.set(this.agents.size);
    this.metrics.grantsActive.set(this.grants.all().length);
    this.metrics.accessPortsOpen.set(this.#access.ports().length);
    this.metrics.sessionsActive.set(this.sessions.size);
    for (const b of this.metrics.backends.values()) this.metrics.backendOnline.set({ backend: b }, this.agents.get(b) ? 1 : 0);
  }

  /**
   * Graceful shutdown: stop accepting, give live sessions up to `drainMs` to finish, then close
   * everything. Grants stay in the database for the next start, with the deadlines they earned.
   */
  async stop(drainMs = 0): Promise<void> {
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#serv.stopAccepting();
    this.#listeners.closeAll();
    await this.sessions.drain(drainMs);
    // The sessions' ends are reported after the database is closed: save what they earned first.
    this.#grants.saveForStop();
    this.sessions.killAll();
    this.#agents.closeAll();
    this.e2e.close();
    await this.rendezvous?.close();
    this.#serv.close();
    this.#stores.close();
  }
}
