import { randomBytes } from 'node:crypto';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { DatabaseSync } from 'node:sqlite';
import { type Credential, HANDSHAKE_SIZE, verifyHandshake } from '../auth/handshake.ts';
import { accessRange, type GatewayConfig } from '../config/gateway-config.ts';
import { bridge } from '../mux/bridge.ts';
import { Mux, SessionLimitError } from '../mux/mux.ts';
import { MuxSession, type CloseReason } from '../mux/session.ts';
import { splice } from '../mux/splice.ts';
import {
  ALL_FEATURES, Command, decodeExpose, encodeExposeReply, ExposeStatus, Feature, bytesToIp, normalizeIp, type CmdFrame,
} from '../protocol/index.ts';
import { openDb } from '../store/db.ts';
import { SqliteSeedCache, type SeedCache } from '../store/replay-store.ts';
import { ConnectRequest, Purpose, readLine, type ConnectReply } from '../connect/protocol.ts';
import type { KeyPair } from '../link/crypto.ts';
import { MAGIC as LINK_MAGIC } from '../link/handshake.ts';
import { loadOrCreateStaticKey } from '../link/keys.ts';
import { LinkServer } from '../link/server.ts';
import type { LinkStream } from '../link/stream.ts';
import { AuthGuard } from './auth-guard.ts';
import { FailureLog } from './failure-log.ts';
import { PreAuthGate } from './pre-auth.ts';
import { NetSet, wireToCidr } from '../util/cidr.ts';
import type { Logger } from '../util/log.ts';
import { KeyCount } from '../util/key-count.ts';
import { PortSet } from '../util/port-range.ts';
import { AccessPorts } from './access-ports.ts';
import { listenOn } from './listen.ts';
import { AgentRegistry, type AgentLink, type ScanResult } from './agents.ts';
import { AuditLog } from './audit.ts';
import { ApiError, forbidden, notFound } from './errors.ts';
import { type Grant, GrantStore, GrantTable, type GrantEnd } from './grants.ts';
import { GatewayMetrics } from './metrics.ts';
import { authorize } from './authorize.ts';
import { UserStore, type User } from './users.ts';

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
  session: MuxSession;
  /** The client's end: a socket, or a `dk connect` client's mux session. */
  socket: Duplex | MuxSession;
}

interface Expose {
  port: number;
  link: AgentLink;
  server: Server;
  allow: NetSet;
  target: { host: string; port: number };
}

/** What gets generated on a first start, printed once by the CLI. */
export interface FirstRun {
  adminToken?: string;
  backend?: { name: string; key: string };
}

/** SPEC §4: handshake seeds are remembered this long, at most this many (docs/security.md). */
const SEED_TTL_MS = 3_600_000;
const SEED_MAX = 100_000;

export class Gateway {
  readonly config: GatewayConfig;
  readonly log: Logger;
  readonly metrics = new GatewayMetrics();
  readonly agents = new AgentRegistry();
  readonly sessions = new Map<string, LiveSession>();
  /** The muxes of live `dk connect` links (by their link stream). */
  readonly connectMuxes = new Map<Duplex, Mux>();
  readonly grants: GrantTable;
  db!: DatabaseSync;
  users!: UserStore;
  audit!: AuditLog;
  #grantStore!: GrantStore;
  #backends = new Map<string, Credential & { exposePorts: PortSet }>();
  #seeds!: SeedCache;
  readonly #access: AccessPorts;
  readonly #exposes = new Map<number, Expose>();
  #serv: Server | null = null;
  /** Set once state is open; serv_port connections before that wait in #early. */
  #ready = false;
  #early: Socket[] = [];
  linkKey!: KeyPair;
  link!: LinkServer;
  /** Failed credentials on every path: per address, per user name, aggregated log lines. */
  readonly auth: AuthGuard;
  #sweeper: NodeJS.Timeout | null = null;
  /** serv_port connections and link streams not yet authenticated: counted, capped per address, with one deadline. */
  readonly #preAuth: PreAuthGate;
  #preAuthSweeper: NodeJS.Timeout | null = null;
  #accessLock: Promise<unknown> = Promise.resolve();
  #lastPrune = 0;
  #stopping = false;
  /** Open dk connect links per user (max_links_per_user). */
  readonly #connectLinks = new KeyCount();
  /**
   * What authenticated peers are refused (caps, permissions), logged like failed authentications:
   * the first at once, then one line per user or backend per interval, so a peer that keeps asking
   * cannot fill the log.
   */
  readonly #refusals: FailureLog;
  /** Live sessions per user, grants and dk connect alike (max_sessions_per_user). */
  readonly #userSessions = new KeyCount();
  servPort = 0;

  constructor(config: GatewayConfig, log: Logger) {
    this.config = config;
    this.log = log;
    this.grants = new GrantTable(config.idle_close * 1000, config.auth_time * 1000);
    const range = PortSet.parse(accessRange(config)).bounds();
    this.#access = new AccessPorts(config.bind, range, (port, s) => this.#onAccess(port, s));
    this.auth = new AuthGuard({
      perIp: config.auth_fail_limit, perUser: config.auth_fail_limit_user, userWindowMs: 15 * 60_000,
      logIntervalMs: config.auth_log_interval * 1000, log, metrics: this.metrics,
    });
    this.#refusals = new FailureLog({
      intervalMs: config.auth_log_interval * 1000,
      write: (fields) => log.warn({ who: fields.source, count: fields.count, reasons: fields.reasons }, fields.first ? 'refused' : `refused ${fields.count} more times`),
    });
    this.#preAuth = new PreAuthGate({ max: config.max_pending_handshakes, maxPerIp: config.max_pending_per_ip, deadlineMs: config.handshake * 1000 });
  }

  /**
   * Listens on serv_port, then opens state, makes first-run secrets and restores grants. The port
   * comes first so that a port in use or a wrong bind address fails before anything is made:
   * first-run secrets are printed once, and a gateway that cannot start would lose them.
   */
  async start(): Promise<FirstRun> {
    // Agents that connect while state is still opening wait for it (a close would look to them like
    // a wrong gateway key), within the same bound as connections mid-handshake.
    this.#serv = createServer({ noDelay: true }, (s) => {
      if (this.#ready) this.#onServConnection(s);
      else if (this.#early.length < this.config.max_pending_handshakes) this.#early.push(s.on('error', () => undefined));
      else s.destroy();
    });
    await listenOn(this.#serv, this.config.bind, this.config.serv_port, { port: 'serv_port', portFlag: '--serv-port', bind: 'bind' });
    this.#serv.on('error', (e) => this.log.error({ err: e }, 'serv_port listener error'));
    this.servPort = (this.#serv.address() as { port: number }).port;
    try {
      return await this.#open();
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  async #open(): Promise<FirstRun> {
    this.db = openDb(this.config.data_dir);
    this.users = new UserStore(this.db);
    this.audit = new AuditLog(this.db);
    this.audit.onError = (err) => this.log.error({ err }, 'audit write failed');
    this.#grantStore = new GrantStore(this.db);
    this.#seeds = new SqliteSeedCache(this.db, SEED_TTL_MS, SEED_MAX);
    const first = this.#bootstrap();
    this.linkKey = loadOrCreateStaticKey(this.config.data_dir);
    this.link = new LinkServer({
      key: this.linkKey,
      detachTimeoutMs: this.config.link_detach_timeout * 1000,
      window: this.config.link_window,
      pingMs: this.config.link_keepalive * 1000,
      deadMs: this.config.link_keepalive * 3000,
      handshakeTimeoutMs: this.config.handshake * 1000,
      onStream: (stream, purpose, socket) => this.#onLinkStream(stream, purpose, socket),
      onError: (err, remote) => {
        this.metrics.agentAuthFailures.inc({ reason: 'link_handshake' });
        this.auth.failures.fail(remote.slice(0, remote.lastIndexOf(':')), `link_handshake: ${err.message.slice(0, 80)}`);
      },
    });
    for (const g of this.#grantStore.loadValid(Date.now())) {
      this.grants.restore(g);
      if (!(await this.#access.open(g.accessPort))) this.log.warn({ port: g.accessPort, grant: g.id }, 'could not reopen access port of a restored grant');
    }
    this.#ready = true;
    for (const early of this.#early.splice(0)) if (!early.destroyed) this.#onServConnection(early);
    this.#sweeper = setInterval(() => this.sweep(), this.config.sweep_interval * 1000);
    this.#sweeper.unref();
    // One timer for every pending handshake; each deadline holds to within one tick.
    this.#preAuthSweeper = setInterval(() => this.#preAuth.sweep(), Math.min(250, this.config.handshake * 250));
    this.#preAuthSweeper.unref();
    this.#updateGauges();
    this.log.info({ serv_port: this.servPort, grants: this.grants.all().length, backends: [...this.#backends.keys()] }, 'gateway listening for agents');
    return first;
  }

  #bootstrap(): FirstRun {
    const first: FirstRun = {};
    if (this.config.admin_token) {
      if (this.users.byName('admin')) this.users.setToken('admin', this.config.admin_token);
      else this.users.create('admin', { admin: true, token: this.config.admin_token });
    } else if (this.users.count() === 0) {
      first.adminToken = this.users.create('admin', { admin: true }).token;
    }
    const rows = this.db.prepare('SELECT name, key FROM backends').all() as { name: string; key: string }[];
    for (const r of rows) this.#backends.set(r.name, { name: r.name, key: r.key, exposePorts: PortSet.parse(this.config.expose_ports) });
    for (const [name, b] of Object.entries(this.config.backends)) {
      this.#backends.set(name, { name, key: b.key, exposePorts: PortSet.parse(b.expose_ports ?? this.config.expose_ports) });
    }
    if (this.#backends.size === 0) {
      const key = randomBytes(18).toString('base64url');
      this.addBackend('default', key);
      first.backend = { name: 'default', key };
    }
    return first;
  }

  /** Adds (or re-keys) a backend in the database; it takes effect at the agent's next handshake. */
  addBackend(name: string, key: string): void {
    this.db.prepare('INSERT INTO backends (name, key, created_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET key = excluded.key')
      .run(name, key, Date.now());
    this.#backends.set(name, { name, key, exposePorts: PortSet.parse(this.config.expose_ports) });
  }

  backendNames(): string[] {
    return [...this.#backends.keys()].sort();
  }

  // ---------------------------------------------------------------- agents

  /**
   * serv_port carries both the encrypted link (first bytes "DKL1") and the seed's plain mode
   * (first bytes: the 32-byte handshake). A plain handshake whose random seed happens to start
   * with "DKL1" (odds 2^-32) fails and the agent retries with a new seed.
   */
  #onServConnection(socket: Socket): void {
    const ip = normalizeIp(socket.remoteAddress);
    const remote = `${ip}:${socket.remotePort}`;
    socket.on('error', () => undefined);
    // SPEC §2: one `handshake` deadline covers telling the modes apart, the link handshake and the
    // agent's (or dk connect client's) authentication; every step counts against the same gate.
    const refused = this.#preAuth.admit(socket, ip, () => this.#handshakeExpired(socket, ip));
    if (refused) {
      this.metrics.preAuthRefused.inc({ reason: refused });
      this.auth.failures.fail(ip, refused === 'per_ip' ? 'too many pending handshakes from this address' : 'too many pending handshakes');
      socket.destroy();
      return;
    }
    socket.once('close', () => this.#preAuth.release(socket));
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const n = Math.min(head.length, LINK_MAGIC.length);
      if (head.length < LINK_MAGIC.length && head.subarray(0, n).equals(LINK_MAGIC.subarray(0, n))) return; // wait for 4 bytes
      socket.off('data', onData);
      socket.pause();
      if (head.subarray(0, 4).equals(LINK_MAGIC)) {
        // A NEW handshake hands its pending entry on to the stream (#onLinkStream); a resume
        // proved the session's keys, so the connection is authenticated once it is attached.
        void this.link.handle(socket, head).then(() => this.#preAuth.release(socket));
      } else {
        this.#acceptAgent(socket, remote, head, false);
      }
    };
    socket.on('data', onData);
  }

  #onLinkStream(stream: LinkStream, purpose: number, socket: Socket): void {
    const ip = normalizeIp(stream.remoteAddress);
    const remote = `${ip}:${stream.remotePort}`;
    stream.on('error', () => undefined);
    const moved = this.#preAuth.transfer(socket, stream, () => this.#handshakeExpired(stream, ip));
    if (!moved) return void stream.destroy(); // its deadline passed during the link handshake
    stream.once('close', () => this.#preAuth.release(stream));
    if (purpose === Purpose.AGENT) this.#acceptAgent(stream, remote, Buffer.alloc(0), true);
    else if (purpose === Purpose.CLIENT) void this.#onConnectClient(stream, ip);
    else stream.destroy();
  }

  #handshakeExpired(conn: Duplex, ip: string): void {
    this.metrics.preAuthRefused.inc({ reason: 'timeout' });
    this.auth.failures.fail(ip, 'handshake_timeout');
    conn.destroy();
  }

  /**
   * The agent handshake (SPEC §4) on a plain socket or inside a link session. The connection is
   * pending in the pre-auth gate, whose deadline closes it if the 32 bytes do not come in time.
   */
  #acceptAgent(socket: Duplex, remote: string, initial: Buffer, overLink: boolean): void {
    const chunks: Buffer[] = [];
    let have = 0;
    const refuse = (reason: string): void => {
      socket.off('data', onData);
      this.#preAuth.release(socket);
      this.metrics.agentAuthFailures.inc({ reason });
      this.auth.failures.fail(remote.slice(0, remote.lastIndexOf(':')), `agent_${reason}`);
      socket.destroy();
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      have += chunk.length;
      if (have < HANDSHAKE_SIZE) return;
      socket.off('data', onData);
      const all = Buffer.concat(chunks, have);
      const ok = verifyHandshake(all.subarray(0, HANDSHAKE_SIZE), this.#backends.values());
      if (!ok) return refuse('bad_hmac');
      if (!this.#seeds.check(ok.seed)) return refuse('replay');
      this.#preAuth.release(socket);
      this.#onAgentAuthenticated(ok.name, socket, remote, all.subarray(HANDSHAKE_SIZE), overLink);
    };
    socket.on('data', onData);
    if (initial.length > 0) onData(initial);
    socket.resume();
  }

  #onAgentAuthenticated(name: string, socket: Duplex, remote: string, rest: Buffer, overLink: boolean): void {
    const link: AgentLink = { name, remote, since: Date.now(), exposes: new Set(), exposesPending: 0, mux: null as unknown as Mux, encrypted: overLink };
    link.mux = new Mux(socket, {
      role: 'gateway',
      maxSessions: this.config.max_sessions_per_link,
      onRefuse: (reason) => this.metrics.sessionsRefused.inc({ reason }),
      window: this.config.window,
      windowMax: this.config.window_max,
      features: this.config.seed_only ? 0 : ALL_FEATURES,
      keepaliveMs: this.config.keepalive * 1000,
      // Over the link, a dropped connection is resumed underneath; only a lost session ends the mux.
      deadAfterMs: overLink ? 0 : this.config.keepalive * 3000,
      onCommand: (f) => this.#onAgentCommand(link, f),
      onHello: (features) => this.log.info({ backend: name, features }, 'agent extensions negotiated'),
      onClose: (err) => this.#onAgentGone(link, err),
    });
    const old = this.agents.add(link);
    if (old) {
      this.log.info({ backend: name, old: old.remote, remote }, 'newer connection for this backend replaces the old one');
      old.mux.destroy();
    }
    this.#updateGauges();
    this.log.info({ backend: name, remote }, 'agent online');
    link.mux.feed(rest);
  }

  #onAgentGone(link: AgentLink, err?: Error): void {
    for (const port of link.exposes) this.#closeExpose(port, link);
    if (this.agents.remove(link)) this.log.info({ backend: link.name, remote: link.remote, err: err?.message }, 'agent offline');
    this.#updateGauges();
  }

  #onAgentCommand(link: AgentLink, f: CmdFrame): void {
    if (f.command === Command.PORT_QUERY) this.agents.onScanReply(link, f.id, f.params);
    else if (f.command === Command.EXPOSE && link.mux.features & Feature.EXPOSE) {
      // A malformed request is a protocol error: close the link, as for any bad frame.
      this.#onExpose(link, f.id, f.params).catch((err: unknown) => link.mux.destroy(err instanceof Error ? err : new Error(String(err))));
    }
  }

  // ---------------------------------------------------------------- static tunnels (expose)

  async #onExpose(link: AgentLink, id: number, params: Buffer): Promise<void> {
    const reply = (status: number, msg: string): void => link.mux.command(id, Command.EXPOSE, encodeExposeReply(status, msg));
    const req = decodeExpose(params);
    const port = req.remotePort;
    const allowed = this.#backends.get(link.name)?.exposePorts ?? PortSet.parse(this.config.expose_ports);
    const reserved = port === this.servPort || port === this.config.mgmt_port || this.#access.inRange(port);
    if (!allowed.has(port) || reserved) {
      this.#refusals.fail(`backend ${link.name}`, `expose_port_not_allowed ${port}`);
      return reply(ExposeStatus.REFUSED, `port ${port} is not open to static tunnels on this gateway`);
    }
    const held = this.#exposes.get(port);
    if (held && held.link.name !== link.name) return reply(ExposeStatus.IN_USE, `port ${port} is published by another backend`);
    // Listeners being set up count too: requests arrive faster than listen() completes.
    const max = this.config.max_exposes_per_agent;
    if (held?.link !== link && link.exposes.size + link.exposesPending >= max) {
      this.metrics.limitsHit.inc({ limit: 'max_exposes_per_agent' });
      this.#refusals.fail(`backend ${link.name}`, 'max_exposes_per_agent');
      return reply(ExposeStatus.REFUSED, `this agent already publishes ${max} static tunnels, the most this gateway allows (max_exposes_per_agent)`);
    }
    if (held) this.#closeExpose(port, held.link);
    const allow = new NetSet(req.allow.length > 0 ? req.allow.map(wireToCidr) : ['*']);
    const target = { host: bytesToIp(req.target), port: req.targetPort };
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (s) => this.#onExposeConnection(port, s));
    link.exposesPending++;
    const ok = await new Promise<string | null>((resolve) => {
      server.once('error', (e) => resolve(e.message));
      server.listen({ host: this.config.bind, port }, () => resolve(null));
    }).finally(() => { link.exposesPending--; });
    if (ok !== null) return reply(ExposeStatus.IN_USE, `cannot listen on port ${port}: ${ok}`);
    if (link.mux.closed) { server.close(); return; }
    server.on('error', () => undefined);
    this.#exposes.set(port, { port, link, server, allow, target });
    link.exposes.add(port);
    this.log.info({ backend: link.name, port, target, allow: allow.entries }, 'static tunnel published');
    reply(ExposeStatus.OK, 'ok');
  }

  #closeExpose(port: number, link: AgentLink): void {
    const e = this.#exposes.get(port);
    if (!e || e.link !== link) return;
    this.#exposes.delete(port);
    link.exposes.delete(port);
    e.server.close();
  }

  exposes(): { port: number; backend: string; target: string; allow: readonly string[] }[] {
    return [...this.#exposes.values()].map((e) => ({ port: e.port, backend: e.link.name, target: `${e.target.host}:${e.target.port}`, allow: e.allow.entries }));
  }

  #onExposeConnection(port: number, socket: Socket): void {
    const e = this.#exposes.get(port);
    const ip = normalizeIp(socket.remoteAddress);
    if (!e || e.link.mux.closed || !e.allow.has(ip)) {
      this.metrics.connectionsRefused.inc({ reason: e ? 'source_not_allowed' : 'no_tunnel' });
      socket.destroy();
      return;
    }
    this.#startSession(socket, socket.remotePort ?? 0, e.link, { kind: 'expose', grantId: null, user: null, clientIp: ip, accessPort: port, host: e.target.host, port: e.target.port });
  }

  // ---------------------------------------------------------------- dk connect (token-bound, over the link)

  /**
   * A `dk connect` session: one JSON request line with an API token and a target, one JSON answer,
   * then the session's bytes go to the agent. Authorization is the token's, checked per connection,
   * so it is safe behind shared NATs (SPEC §3); failures are rate-limited per source IP like the API.
   */
  async #onConnectClient(stream: LinkStream, ip: string): Promise<void> {
    stream.on('error', () => undefined);
    const refuse = (code: string, message: string): void => {
      const r: ConnectReply = { ok: false, code, message };
      stream.end(JSON.stringify(r) + '\n');
      if (code !== 'unauthorized' && code !== 'too_many_failures') this.log.info({ client: ip, code }, 'dk connect refused');
    };
    const blocked = this.auth.blocked(ip);
    if (blocked) return refuse('too_many_failures', blocked.message);
    let req: ConnectRequest;
    try {
      const parsed = ConnectRequest.safeParse(JSON.parse(await readLine(stream, this.config.handshake * 1000)));
      if (!parsed.success) return refuse('bad_request', parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
      req = parsed.data;
    } catch (e) {
      return refuse('bad_request', `expected one JSON request line: ${(e as Error).message}`);
    }
    const user = this.users.byToken(req.token);
    if (!user) {
      this.auth.failed(ip, null, 'connect_token');
      this.metrics.apiAuthFailures.inc();
      return refuse('unauthorized', 'unknown API token');
    }
    this.#preAuth.release(stream);
    if (!this.#connectLinks.take(user.name, this.config.max_links_per_user)) {
      this.metrics.connectionsRefused.inc({ reason: 'links_per_user' });
      return refuse('too_many_links', `user "${user.name}" has ${this.config.max_links_per_user} dk connect links open already (max_links_per_user)`);
    }
    stream.once('close', () => this.#connectLinks.give(user.name));
    const host = req.host ?? '127.0.0.1';
    if (isIP(host) === 0) return refuse('bad_request', 'host must be an IP address');
    if (!this.#backends.has(req.backend)) return refuse('not_found', `backend "${req.backend}" not found`);
    const target = this.#connectTarget(user, req.backend, host, req.port);
    if ('code' in target) return refuse(target.code, target.message);
    if (req.mux) {
      const ok: ConnectReply = { ok: true };
      stream.write(JSON.stringify(ok) + '\n');
      this.#serveConnectMux(stream, ip, req);
      return;
    }
    if (target.link.mux.sessions.size >= this.config.max_sessions_per_link) {
      this.metrics.connectionsRefused.inc({ reason: 'session_cap' });
      return refuse('session_cap', `backend "${req.backend}" already carries ${this.config.max_sessions_per_link} sessions (max_sessions_per_link); retry when some end`);
    }
    const key = this.#startSession(stream, stream.remotePort ?? 0, target.link, { kind: 'connect', grantId: null, user: user.name, clientIp: ip, accessPort: 0, host, port: req.port });
    if (key === null) return;
    const ok: ConnectReply = { ok: true, session: key };
    stream.write(JSON.stringify(ok) + '\n');
  }

  /** The agent link a `dk connect` user may reach host:port through now, or why not. */
  #connectTarget(user: User, backend: string, host: string, port: number): { link: AgentLink } | { code: string; message: string } {
    const refused = authorize(user, { backend, host, port });
    if (refused) return { code: 'forbidden', message: refused };
    const link = this.agents.get(backend);
    if (!link || link.mux.closed) return { code: 'backend_offline', message: `backend "${backend}" has no agent online` };
    return { link };
  }

  /**
   * A `dk connect` link that multiplexes its connections: the client opens one mux session per
   * local connection. Each is checked again (the token still names a user who may reach that
   * target, the backend is online) and spliced to a session on the agent's link. A token that no
   * longer authenticates ends the whole link, so the client's next connection learns why.
   */
  #serveConnectMux(stream: LinkStream, ip: string, req: ConnectRequest): void {
    const mux: Mux = new Mux(stream, {
      role: 'agent',
      maxSessions: this.config.max_sessions_per_link,
      onRefuse: (reason) => this.metrics.sessionsRefused.inc({ reason }),
      window: this.config.window,
      windowMax: this.config.window_max,
      features: Feature.FLOW | Feature.PONG,
      keepaliveMs: 0,
      deadAfterMs: 0,
      onOpen: (session, port, host) => {
        const user = this.users.byToken(req.token);
        if (!user) {
          this.log.info({ client: ip }, 'dk connect: token no longer valid; link closed');
          mux.destroy();
          return;
        }
        const target = this.#connectTarget(user, req.backend, host, port);
        if ('code' in target) {
          this.metrics.connectionsRefused.inc({ reason: target.code });
          this.#refusals.fail(`user ${user.name}`, `connect_${target.code} ${host}:${port}`);
          session.close();
          return;
        }
        this.#startSession(session, stream.remotePort ?? 0, target.link, { kind: 'connect', grantId: null, user: user.name, clientIp: ip, accessPort: 0, host, port });
      },
      onClose: (err) => {
        this.connectMuxes.delete(stream);
        this.log.debug({ client: ip, err: err?.message }, 'dk connect link ended');
      },
    });
    this.connectMuxes.set(stream, mux);
    stream.resume(); // readLine paused it
  }

  // ---------------------------------------------------------------- access ports

  #onAccess(port: number, socket: Socket): void {
    const ip = normalizeIp(socket.remoteAddress);
    const grant = this.grants.lookup(port, ip);
    // SPEC §3: no grant for this source IP on this port → close at once: not a byte, not a hint.
    if (!grant) {
      this.metrics.connectionsRefused.inc({ reason: 'no_grant' });
      socket.on('error', () => undefined);
      socket.destroy();
      return;
    }
    const link = this.agents.get(grant.backend);
    if (!link || link.mux.closed) {
      this.metrics.connectionsRefused.inc({ reason: 'backend_offline' });
      this.log.info({ grant: grant.id, backend: grant.backend }, 'access refused: backend offline');
      socket.on('error', () => undefined);
      socket.destroy();
      return;
    }
    this.grants.sessionStarted(grant.id);
    if (this.#startSession(socket, socket.remotePort ?? 0, link, { kind: 'grant', grantId: grant.id, user: grant.userName, clientIp: ip, accessPort: port, host: grant.host, port: grant.port }) === null) {
      this.grants.sessionEnded(grant.id);
    }
  }

  /**
   * Opens a session on the agent's link and joins the client's end to it. Returns null, having
   * closed the client's end, when the link already carries max_sessions_per_link sessions.
   */
  #startSession(socket: Duplex | MuxSession, clientPort: number, link: AgentLink, s: { kind: LiveSession['kind']; grantId: string | null; user: string | null; clientIp: string; accessPort: number; host: string; port: number }): string | null {
    // Per user before per link: one user's sessions cannot fill the agent's link for everyone.
    if (s.user !== null && !this.#userSessions.take(s.user, this.config.max_sessions_per_user)) {
      this.metrics.connectionsRefused.inc({ reason: 'user_session_cap' });
      this.#refusals.fail(`user ${s.user}`, 'max_sessions_per_user');
      if (socket instanceof MuxSession) socket.close();
      else socket.destroy();
      return null;
    }
    const user = s.user;
    const giveBack = (): void => { if (user !== null) this.#userSessions.give(user); };
    let session: MuxSession;
    try {
      session = link.mux.open(s.port, s.host);
    } catch (e) {
      giveBack();
      if (!(e instanceof SessionLimitError)) throw e;
      this.metrics.connectionsRefused.inc({ reason: 'session_cap' });
      this.#refusals.fail(`backend ${link.name}`, 'max_sessions_per_link');
      if (socket instanceof MuxSession) socket.close();
      else socket.destroy();
      return null;
    }
    const key = `${link.name}.${session.id.toString(16)}`;
    const target = s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
    const live: LiveSession = {
      key, kind: s.kind, backend: link.name, grantId: s.grantId, user: s.user, clientIp: s.clientIp, clientPort,
      accessPort: s.accessPort, target, startedAt: Date.now(), session, socket,
    };
    this.sessions.set(key, live);
    this.metrics.sessionsTotal.inc({ kind: s.kind });
    this.metrics.sessionsActive.set(this.sessions.size);
    this.log.debug({ session: key, client: s.clientIp, target }, 'session open');
    const ended = (reason: CloseReason): void => {
      this.sessions.delete(key);
      giveBack();
      if (s.grantId) this.#grantEnded(s.grantId);
      this.metrics.sessionsActive.set(this.sessions.size);
      this.metrics.bytes.inc({ direction: 'up' }, session.bytesOut);
      this.metrics.bytes.inc({ direction: 'down' }, session.bytesIn);
      this.#audit({
        event: 'session', user: s.user, clientIp: s.clientIp, backend: link.name, target, grantId: s.grantId, sessionId: session.id,
        bytesUp: session.bytesOut, bytesDown: session.bytesIn, detail: `${s.kind} ${reason} ${Date.now() - live.startedAt}ms`,
      });
    };
    if (socket instanceof MuxSession) splice(socket, session, ended);
    else bridge(session, socket, ended);
    return key;
  }

  // ---------------------------------------------------------------- API operations

  /** SPEC §3 step 3: records a grant and opens (or reuses) an access port. Serialized. */
  requestAccess(user: User, clientIp: string, backend: string, host: string, port: number): Promise<Grant> {
    const run = async (): Promise<Grant> => {
      if (!this.#backends.has(backend)) throw notFound(`backend "${backend}"`);
      const refused = authorize(user, { backend, host, port });
      if (refused) throw forbidden(refused);
      const req = { userId: user.id, userName: user.name, clientIp, backend, host, port };
      const existing = this.grants.existing(req);
      if (existing && this.#access.has(existing.accessPort)) {
        this.#grantStore.save(existing);
        return existing;
      }
      const held = this.grants.all().filter((g) => g.userName === user.name).length;
      if (held >= this.config.max_grants_per_user) {
        throw new ApiError(429, 'too_many_grants', `user "${user.name}" holds ${held} grants (max_grants_per_user); revoke one (DELETE /api/v1/grants/ID) or let one expire`);
      }
      let accessPort = this.grants.reusablePort(clientIp, this.#access.ports());
      if (accessPort === null) {
        accessPort = await this.#access.openNext(new Set(this.#exposes.keys()));
        if (accessPort === null) throw new ApiError(503, 'no_access_port', 'every access port is in use; try again when grants expire, or widen access_ports');
      }
      const g = this.grants.create(req, accessPort);
      this.#grantStore.save(g);
      this.#audit({ event: 'grant', user: user.name, clientIp, backend, target: `${host}:${port}`, grantId: g.id, detail: `access_port ${accessPort}` });
      this.#updateGauges();
      return g;
    };
    const p = this.#accessLock.then(run, run);
    this.#accessLock = p.catch(() => undefined);
    return p;
  }

  revokeGrant(id: string, by: string): Grant {
    const g = this.grants.get(id);
    if (!g) throw notFound(`grant ${id}`);
    this.#endGrant(g, 'revoked', by);
    this.#closeIdlePorts();
    this.#updateGauges();
    return g;
  }

  #endGrant(g: Grant, why: GrantEnd, by?: string): void {
    this.grants.remove(g.id);
    this.#grantStore.delete(g.id);
    for (const s of this.sessions.values()) if (s.grantId === g.id) this.#kill(s);
    this.#audit({ event: `grant.${why}`, user: g.userName, clientIp: g.clientIp, backend: g.backend, target: `${g.host}:${g.port}`, grantId: g.id, detail: by ? `by ${by}` : null });
    this.log.info({ grant: g.id, why }, 'grant ended');
  }

  killSession(key: string): LiveSession {
    const s = this.sessions.get(key);
    if (!s) throw notFound(`session ${key}`);
    this.#kill(s);
    return s;
  }

  #kill(s: LiveSession): void {
    s.session.close();
    if (s.socket instanceof MuxSession) s.socket.close();
    else s.socket.destroy();
  }

  async scan(backend: string, port: number): Promise<ScanResult> {
    const link = this.agents.get(backend);
    if (!this.#backends.has(backend)) throw notFound(`backend "${backend}"`);
    if (!link) throw new ApiError(503, 'backend_offline', `backend "${backend}" has no agent online`);
    if (this.agents.pendingScans(link) >= this.config.max_pending_scans) {
      this.metrics.limitsHit.inc({ limit: 'max_pending_scans' });
      throw new ApiError(429, 'too_many_scans', `${this.config.max_pending_scans} port queries are already waiting for backend "${backend}" (max_pending_scans); retry when one has answered`);
    }
    return this.agents.scan(link, port, this.config.scan_timeout * 1000);
  }

  /** A grant's session ended: its idle deadline starts now, in memory and on disk. */
  #grantEnded(id: string): void {
    this.grants.sessionEnded(id);
    const g = this.grants.get(id);
    if (g) this.#saveGrant(g);
  }

  #saveGrant(g: Grant): void {
    if (this.#stopping) return; // stop() saved every grant with sessions before closing the database
    try {
      this.#grantStore.save(g);
    } catch (err) {
      this.log.error({ err, grant: g.id }, 'could not save a grant deadline');
    }
  }

  /** Deadlines: drop idle and expired grants, close access ports nobody holds. */
  sweep(): void {
    this.auth.failures.tick();
    this.#refusals.tick();
    for (const g of this.grants.refreshActive()) this.#saveGrant(g);
    for (const { grant, why } of this.grants.sweep()) this.#endGrant(grant, why);
    this.#closeIdlePorts();
    this.#updateGauges();
    if (Date.now() - this.#lastPrune > 3_600_000) {
      this.#lastPrune = Date.now();
      this.audit.prune(this.config.audit_days);
    }
  }

  #closeIdlePorts(): void {
    const used = this.grants.portsInUse();
    for (const s of this.sessions.values()) if (s.kind === 'grant') used.add(s.accessPort);
    for (const p of this.#access.ports()) if (!used.has(p)) this.#access.close(p);
  }

  accessPorts(): number[] {
    return this.#access.ports().sort((a, b) => a - b);
  }

  #audit(e: Parameters<AuditLog['write']>[0]): void {
    try {
      this.audit.write(e);
    } catch (err) {
      this.log.error({ err }, 'audit write failed');
    }
  }

  #updateGauges(): void {
    this.metrics.agentsOnline.set(this.agents.size);
    this.metrics.grantsActive.set(this.grants.all().length);
    this.metrics.accessPortsOpen.set(this.#access.ports().length);
    this.metrics.sessionsActive.set(this.sessions.size);
    for (const a of this.agents.list()) if (a.mux.rttMs !== null) this.metrics.linkRtt.observe(a.mux.rttMs / 1000);
  }

  /**
   * Graceful shutdown: stop accepting, give live sessions up to `drainMs` to finish, then close
   * everything. Grants stay in the database for the next start.
   */
  async stop(drainMs = 0): Promise<void> {
    if (this.#sweeper) clearInterval(this.#sweeper);
    if (this.#preAuthSweeper) clearInterval(this.#preAuthSweeper);
    this.#serv?.close();
    for (const s of this.#early.splice(0)) s.destroy();
    this.#preAuth.clear();
    this.#access.closeAll();
    for (const e of this.#exposes.values()) e.server.close();
    const deadline = Date.now() + drainMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    // The sessions' ends are reported after the database is closed: save what they earned first.
    this.grants.refreshActive();
    for (const g of this.grants.all()) if (this.grants.activeSessions(g.id) > 0) this.#saveGrant(g);
    this.#stopping = true;
    for (const s of this.sessions.values()) this.#kill(s);
    for (const a of this.agents.list()) a.mux.destroy();
    this.link?.close();
    this.audit?.flushQuietly();
    this.db?.close();
  }
}
