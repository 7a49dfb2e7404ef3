import { encodeAgentInfo } from '../protocol/agent-info.ts';
import { packageVersion } from '../util/version.ts';
import { EventEmitter } from 'node:events';
import { connect, isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Purpose } from '../connect/protocol.ts';
import { connectLink, logResumeFailures } from '../link/client.ts';
import { decodeKey } from '../link/keys.ts';
import { makeHandshake } from '../auth/handshake.ts';
import { splitHostPort, usesLink, type AgentConfig } from '../config/agent-config.ts';
import { ConfigError } from '../config/errors.ts';
import { bridge } from '../mux/bridge.ts';
import { Mux } from '../mux/mux.ts';
import type { MuxSession } from '../mux/session.ts';
import {
  ALL_FEATURES, Command, decodeExposeReply, decodeRefused, encodeAllowlist, decodePortQuery, encodeExpose, encodeScanReplies, ExposeStatus, Feature, ipToBytes,
  ScanFlag, type CmdFrame,
} from '../protocol/index.ts';
import { cidrToWire } from '../util/cidr.ts';
import type { Logger } from '../util/log.ts';
import { Allowlist } from './allowlist.ts';
import { backoffDelay } from '../util/backoff.ts';
import { connected } from '../util/connect.ts';
import { connectScan, scanTargets } from './scan.ts';
import { E2eEndpoint } from './e2e-endpoint.ts';
import { generateKeyPair } from '../link/crypto.ts';
import { loadOrCreateStaticKey } from '../link/keys.ts';
import { GatewayKeyMismatchError, GatewayRefusedError } from './errors.ts';

/** A link that lived this long counts as healthy even without HELLO (a seed-only gateway). */
const HEALTHY_MS = 10_000;
const MAX_CONCURRENT_SCANS = 2;
/**
 * A wrong pinned key looks, from the agent, like a gateway that closes the connection right after
 * the first handshake message; so does a gateway refusing handshakes for a moment (overload,
 * shutting down). Three such answers in a row, seconds apart by the backoff, is a wrong key.
 */
const KEY_MISMATCH_ATTEMPTS = 3;
/** The same count for REFUSED answers (a wrong name or key): a gateway whose backends are being changed gets a moment. */
const REFUSED_ATTEMPTS = 3;

interface ExposeSpec {
  remotePort: number;
  host: string;
  port: number;
  allow: string[];
}

/**
 * The agent (SPEC §2, "DKS"): dials the gateway, authenticates, keeps the link alive, reconnects
 * with jittered exponential backoff, dials allowed LAN targets on OPN and answers PORT QUERY.
 * It never gives up on an unreachable gateway: while started, its reconnect loop keeps the process
 * alive. It stops by itself only when the gateway key mismatch persists (KEY_MISMATCH_ATTEMPTS).
 * Events: 'online' (link up), 'offline' (link lost), 'expose' (a static tunnel's answer),
 * 'authError' (one failed gateway proof), 'refused' (the gateway refused our name or key once),
 * 'fatal' (a GatewayKeyMismatchError or GatewayRefusedError; the agent has stopped).
 */
export class Agent extends EventEmitter {
  readonly config: AgentConfig;
  readonly log: Logger;
  readonly allowlist: Allowlist;
  readonly #exposes: ExposeSpec[];
  #mux: Mux | null = null;
  #attempt = 0;
  /** Consecutive attempts whose gateway failed to prove the pinned key. */
  #keyFailures = 0;
  /** Consecutive connections the (authenticated) gateway answered with REFUSED. */
  #refusals = 0;
  #stopped = false;
  #retry: NodeJS.Timeout | null = null;
  #scans = 0;
  readonly #targets = new Set<Socket>();
  refused = 0;
  /** OPNs refused because the link already carried max_sessions sessions. */
  sessionCapRefused = 0;
  /** End-to-end dk connect links (docs/p2p.md §9), over the encrypted link only. */
  readonly e2e: E2eEndpoint | null;

  constructor(config: AgentConfig, log: Logger) {
    super();
    this.config = config;
    this.log = log;
    this.#exposes = config.expose.map((e) => {
      const { host, port } = splitHostPort(e.local);
      const ip = host === 'localhost' ? '127.0.0.1' : host;
      if (isIP(ip) === 0) throw new ConfigError(`expose.local ${e.local}: must be an IP address and port, like 127.0.0.1:8080`);
      return { remotePort: e.remote_port, host: ip, port, allow: e.allow };
    });
    // The agent always allows what it publishes itself.
    this.allowlist = new Allowlist([...config.lan_nets, ...this.#exposes.map((e) => (e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`))]);
    if (usesLink(config) && !config.seed_only) {
      const { host, port } = splitHostPort(config.gateway);
      // Without a data dir the key lives as long as this process: clients that pin it (--agent-key) must then pin it anew after a restart.
      const key = config.data_dir ? loadOrCreateStaticKey(config.data_dir, 'agent_link_key') : generateKeyPair();
      this.e2e = new E2eEndpoint({
        name: config.name, key, gatewayHost: host, gatewayPort: port, log, window: config.window, windowMax: config.window_max, maxSessions: config.max_sessions,
        open: (session, p, ip) => this.#onOpen(session, p, ip),
      });
    } else {
      this.e2e = null;
    }
  }

  get online(): boolean {
    return this.#mux !== null && !this.#mux.closed;
  }
  get mux(): Mux | null {
    return this.#mux;
  }

  start(): void {
    this.#stopped = false;
    if (!this.config.plain && !this.config.gateway_key) {
      this.log.warn('no gateway_key: speaking the seed\'s plain, unencrypted protocol that does not survive link drops. '
        + 'Pass --gateway-key KEY (`dk pubkey` on the gateway prints it) for the encrypted, resumable link, or --plain to choose plain mode and silence this.');
    }
    this.#dial();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retry) clearTimeout(this.#retry);
    this.#mux?.destroy();
    this.e2e?.close();
    for (const s of this.#targets) s.destroy();
    await new Promise((r) => setImmediate(r));
  }

  #dial(): void {
    if (this.#stopped) return;
    const attempt = usesLink(this.config) ? this.#dialLink() : this.#dialPlain();
    attempt.then((conn) => {
      this.#keyFailures = 0;
      this.#run(conn);
    }, (err: Error & { code?: string; answered?: boolean }) => {
      if (err.code !== 'DK_LINK_SERVER_AUTH') {
        this.#keyFailures = 0;
        this.#retryLater(err.message);
        return;
      }
      this.emit('authError', err);
      // Only an answer that fails authentication is evidence of a wrong key; a close or silence is
      // what an overloaded or starting gateway gives too, and must never make the agent give up.
      if (err.answered) this.#keyFailures++;
      else this.#keyFailures = 0;
      if (this.#keyFailures >= KEY_MISMATCH_ATTEMPTS) {
        const fatal = new GatewayKeyMismatchError(this.config.gateway, this.#keyFailures);
        this.log.fatal({ gateway: this.config.gateway, code: fatal.code }, fatal.message);
        void this.stop().then(() => this.emit('fatal', fatal));
        return;
      }
      this.#retryLater(err.message, 'the gateway did not prove it holds the pinned key: check gateway_key (`dk pubkey` on the gateway); nothing was sent; retrying');
    });
  }

  #dialPlain(): Promise<Duplex> {
    const { host, port } = splitHostPort(this.config.gateway);
    return connected(connect({ host, port, noDelay: true }));
  }

  /** The encrypted, resumable link (SPEC §5): drops of the TCP connection are resumed underneath. */
  #dialLink(): Promise<Duplex> {
    const { host, port } = splitHostPort(this.config.gateway);
    return connectLink({
      host, port, serverKey: decodeKey(this.config.gateway_key!), purpose: Purpose.AGENT,
      pingMs: this.config.keepalive * 1000, deadMs: this.config.keepalive * 3000, resumeForMs: this.config.link_resume * 1000,
    }).then((stream) => {
      logResumeFailures(stream, this.log, 'gateway link');
      return stream;
    });
  }

  /** One log line per attempt, then the next attempt after a jittered, growing delay. */
  #retryLater(why: string, what = 'gateway unreachable or link lost; reconnecting'): void {
    if (this.#stopped) return;
    const delay = backoffDelay(this.#attempt++, this.config.reconnect_min * 1000, this.config.reconnect_max * 1000);
    // Deliberately not unref'd, unlike every other timer here: between attempts this timer is the
    // only thing a started agent waits on, and an agent must outlive its gateway. stop() clears it
    // (set before logging, so that a stop() from whoever reads the log clears it too).
    this.#retry = setTimeout(() => this.#dial(), delay);
    this.log.warn({ gateway: this.config.gateway, why, attempt: this.#attempt, retry_ms: Math.round(delay) }, what);
  }

  /** Authenticates on `conn` (SPEC §4) and runs the DK mux over it until it ends. */
  #run(conn: Duplex): void {
    if (this.#stopped) {
      conn.destroy();
      return;
    }
    let settled = false;
    let healthy: NodeJS.Timeout | null = null;
    /** The gateway's REFUSED answer on this connection (encrypted link only: only there is it the gateway's word). */
    let refusal: string | null = null;
    const lost = (why: string): void => {
      if (settled) return;
      settled = true;
      if (healthy) clearTimeout(healthy);
      conn.destroy();
      this.#mux = null;
      this.emit('offline', why);
      if (refusal === null) {
        this.#refusals = 0;
        this.#retryLater(why);
        return;
      }
      this.emit('refused', refusal);
      if (++this.#refusals >= REFUSED_ATTEMPTS) {
        const fatal = new GatewayRefusedError(this.config.gateway, this.config.name, this.#refusals);
        this.log.fatal({ gateway: this.config.gateway, code: fatal.code }, fatal.message);
        void this.stop().then(() => this.emit('fatal', fatal));
        return;
      }
      this.#retryLater(refusal, `the gateway refused backend "${this.config.name}" with this key: check name and key against the gateway's backends; retrying`);
    };
    conn.on('error', (e: Error) => lost(e.message));
    conn.once('close', () => lost('closed'));
    // SPEC §4: 16-byte seed, then the first 16 bytes of HMAC-SHA256(key, seed ‖ name).
    conn.write(makeHandshake(this.config.name, this.config.key));
    const mux = new Mux(conn, {
      role: 'agent',
      window: this.config.window,
      windowMax: this.config.window_max,
      features: this.config.seed_only ? 0 : ALL_FEATURES,
      keepaliveMs: this.config.keepalive * 1000,
      deadAfterMs: usesLink(this.config) ? 0 : this.config.keepalive * 3000,
      maxSessions: this.config.max_sessions,
      onRefuse: () => {
        // Logged once per burst, not per OPN: a flood must not become a flood of log lines.
        if (this.sessionCapRefused++ % 1000 === 0) this.log.warn({ max: this.config.max_sessions, refused: this.sessionCapRefused }, 'gateway opened more sessions than max_sessions; refused');
      },
      onOpen: (s, p, ip) => this.#onOpen(s, p, ip),
      onCommand: (f) => {
        if (f.command !== Command.REFUSED) return this.#onCommand(mux, f);
        // Only before HELLO (the gateway sends it in place of HELLO), and only from the pinned gateway.
        if (!usesLink(this.config) || mux.peerHello) return;
        try {
          refusal = decodeRefused(f.params).message;
        } catch {
          refusal = 'refused (no reason given)';
        }
      },
      onHello: (features) => {
        this.#attempt = 0;
        this.#refusals = 0;
        if (features & Feature.INFO) mux.command(0, Command.AGENT_INFO, encodeAgentInfo(packageVersion()));
        if (features & Feature.ALLOWLIST) this.#tellAllowlist(mux);
        if (features & Feature.EXPOSE) this.#publish(mux);
        if (features & Feature.E2E && this.e2e) mux.command(0, Command.E2E, Buffer.from(JSON.stringify({ t: 'link_key', key: this.e2e.publicKey }), 'utf8'));
      },
      onClose: (err) => lost(err?.message ?? 'link closed'),
    });
    this.#mux = mux;
    healthy = setTimeout(() => { this.#attempt = 0; }, HEALTHY_MS);
    healthy.unref();
    this.log.info({ gateway: this.config.gateway, backend: this.config.name, encrypted: usesLink(this.config), ...(this.e2e ? { agent_key: this.e2e.publicKey } : {}) }, 'connected to gateway');
    this.emit('online');
  }

  #onOpen(session: MuxSession, port: number, ip: string): void {
    if (!this.allowlist.allows(ip, port)) {
      this.refused++;
      this.log.warn({ target: `${ip}:${port}` }, 'gateway asked for a target outside lan_nets; refused');
      session.close();
      return;
    }
    const sock = connect({ host: ip, port, allowHalfOpen: true, noDelay: true });
    this.#targets.add(sock);
    let connected = false;
    const timer = setTimeout(() => sock.destroy(), this.config.connect_timeout * 1000);
    timer.unref();
    sock.once('connect', () => {
      connected = true;
      clearTimeout(timer);
      if (session.closed) {
        sock.destroy();
        return;
      }
      bridge(session, sock);
    });
    sock.once('error', (e) => {
      if (connected) return; // after connect, the bridge handles errors
      this.log.info({ target: `${ip}:${port}`, err: e.message }, 'target unreachable');
    });
    sock.once('close', () => {
      clearTimeout(timer);
      this.#targets.delete(sock);
      if (!connected) session.close(); // never connected: tell the gateway (CLS)
    });
  }

  #onCommand(mux: Mux, f: CmdFrame): void {
    if (f.command === Command.PORT_QUERY) {
      const port = decodePortQuery(f.params);
      void this.#scan(mux, f.id, port);
    } else if (f.command === Command.E2E && this.e2e && mux.features & Feature.E2E) {
      try {
        this.e2e.onCommand(Buffer.from(f.params));
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'bad end-to-end command from the gateway; ignored');
      }
    } else if (f.command === Command.EXPOSE) {
      const r = decodeExposeReply(f.params);
      const spec = this.#exposes[f.id - 1];
      const ok = r.status === ExposeStatus.OK;
      this.log[ok ? 'info' : 'warn']({ remote_port: spec?.remotePort, status: r.status, message: r.message }, ok ? 'static tunnel published' : 'static tunnel refused');
      this.emit('expose', { remotePort: spec?.remotePort, ok, message: r.message });
    }
  }

  async #scan(mux: Mux, id: number, port: number): Promise<void> {
    const rules = this.allowlist.rulesFor(port);
    if (rules.length === 0 || this.#scans >= MAX_CONCURRENT_SCANS) {
      for (const p of encodeScanReplies([], ScanFlag.REFUSED)) mux.command(id, Command.PORT_QUERY, p);
      return;
    }
    this.#scans++;
    try {
      const { hosts, truncated } = scanTargets(rules, this.config.scan_max_hosts);
      const open = await connectScan(hosts, port, {
        concurrency: this.config.scan_concurrency, timeoutMs: this.config.scan_timeout * 1000, maxHosts: this.config.scan_max_hosts,
      });
      for (const p of encodeScanReplies(open.map(ipToBytes), truncated ? ScanFlag.TRUNCATED : 0)) mux.command(id, Command.PORT_QUERY, p);
      this.log.info({ port, scanned: hosts.length, open: open.length }, 'port query answered');
    } finally {
      this.#scans--;
    }
  }

  /** ALLOWLIST: the gateway learns what this agent dials, to refuse anything else up front (it is still checked here on every OPN). */
  #tellAllowlist(mux: Mux): void {
    const { rules, incomplete } = this.allowlist.toWire();
    for (const p of encodeAllowlist(rules, incomplete)) mux.command(0, Command.ALLOWLIST, p);
  }

  #publish(mux: Mux): void {
    this.#exposes.forEach((e, i) => {
      mux.command(i + 1, Command.EXPOSE, encodeExpose({
        remotePort: e.remotePort, targetPort: e.port, target: ipToBytes(e.host), allow: e.allow.map(cidrToWire),
      }));
    });
  }
}
