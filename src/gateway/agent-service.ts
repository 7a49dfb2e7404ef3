import type { Duplex } from 'node:stream';
import type { GatewayConfig } from '../config/gateway-config.ts';
import { Mux } from '../mux/mux.ts';
import { ALL_FEATURES, Command, Feature, type CmdFrame, decodeAgentInfo } from '../protocol/index.ts';
import type { Logger } from '../util/log.ts';
import { AgentAllowlist } from './agent-allowlist.ts';
import { AgentRegistry, type AgentLink, type ScanResult } from './agents.ts';
import type { Backends } from './backends.ts';
import { ApiError, notFound } from './errors.ts';
import type { GatewayMetrics } from './metrics.ts';
import type { StaticTunnels } from './static-tunnels.ts';

export interface AgentServiceInit {
  config: Pick<GatewayConfig, 'max_sessions_per_link' | 'window' | 'window_max' | 'seed_only' | 'keepalive' | 'max_pending_scans' | 'scan_timeout'>;
  backends: Backends;
  tunnels: StaticTunnels;
  metrics: GatewayMetrics;
  log: Logger;
  /** The set of online agents changed. */
  onChange: () => void;
  /** End-to-end dk connect links (E2E commands; docs/p2p.md §9). */
  e2e?: { onAgentHello(link: AgentLink): void; onAgentCommand(link: AgentLink, params: Buffer): void };
}

/**
 * Authenticated agents: runs the DK mux over each agent's connection (plain socket or link
 * stream), keeps the registry (a newer link for a name replaces the older, SPEC §4), routes the
 * agent's commands (PORT QUERY answers, EXPOSE requests) and asks agents to scan.
 */
export class AgentService {
  readonly registry = new AgentRegistry();
  readonly #init: AgentServiceInit;

  constructor(init: AgentServiceInit) {
    this.#init = init;
  }

  /** The agent `name` authenticated on `conn`; `rest` is what it sent after its handshake. */
  attach(name: string, conn: Duplex, remote: string, rest: Buffer, overLink: boolean): void {
    const { config, metrics, log } = this.#init;
    let link: AgentLink | null = null;
    const mux = new Mux(conn, {
      role: 'gateway',
      maxSessions: config.max_sessions_per_link,
      onRefuse: (reason) => metrics.sessionsRefused.inc({ reason }),
      window: config.window,
      windowMax: config.window_max,
      features: config.seed_only ? 0 : ALL_FEATURES,
      keepaliveMs: config.keepalive * 1000,
      // Over the link, a dropped connection is resumed underneath; only a lost session ends the mux.
      deadAfterMs: overLink ? 0 : config.keepalive * 3000,
      onCommand: (f) => { if (link) this.#onCommand(link, f); },
      onRtt: (ms) => metrics.linkRtt.observe({ backend: metrics.backends.label(name) }, ms / 1000),
      onHello: (features) => {
        link?.allowlist.negotiated((features & Feature.ALLOWLIST) !== 0);
        if (link) this.#init.e2e?.onAgentHello(link);
        log.info({ backend: name, features }, 'agent extensions negotiated');
      },
      onClose: (err) => { if (link) this.#gone(link, err); },
    });
    if (mux.closed) return;
    link = { name, remote, since: Date.now(), exposes: new Set(), exposesPending: 0, mux, encrypted: overLink, allowlist: new AgentAllowlist(), resumes: 0, version: null, e2eKey: null };
    const old = this.registry.add(link);
    if (old) {
      log.info({ backend: name, old: old.remote, remote }, 'newer connection for this backend replaces the old one');
      old.mux.destroy();
    }
    // The link stream was attached once before the agent authenticated: each 'attached' now is a resume.
    const online = link;
    if (overLink) {
      conn.on('attached', () => {
        online.resumes++;
        metrics.linkResumes.inc({ kind: 'agent', backend: metrics.backends.label(name) });
      });
    }
    this.#init.onChange();
    log.info({ backend: name, remote }, 'agent online');
    mux.feed(rest);
  }

  /** The online link of `backend`, if it can carry sessions. */
  online(backend: string): AgentLink | undefined {
    const link = this.registry.get(backend);
    return link && !link.mux.closed ? link : undefined;
  }

  /** PORT QUERY (SPEC §4) through the agent of `backend`, bounded per link by max_pending_scans. */
  async scan(backend: string, port: number): Promise<ScanResult> {
    const { config, metrics } = this.#init;
    const link = this.registry.get(backend);
    if (!this.#init.backends.has(backend)) throw notFound(`backend "${backend}"`);
    if (!link) throw new ApiError(503, 'backend_offline', `backend "${backend}" has no agent online`);
    if (this.registry.pendingScans(link) >= config.max_pending_scans) {
      metrics.limitsHit.inc({ limit: 'max_pending_scans' });
      throw new ApiError(429, 'too_many_scans', `${config.max_pending_scans} port queries are already waiting for backend "${backend}" (max_pending_scans); retry when one has answered`);
    }
    return this.registry.scan(link, port, config.scan_timeout * 1000);
  }

  closeAll(): void {
    for (const a of this.registry.list()) a.mux.destroy();
  }

  #gone(link: AgentLink, err?: Error): void {
    this.#init.tunnels.closeFor(link);
    if (this.registry.remove(link)) this.#init.log.info({ backend: link.name, remote: link.remote, err: err?.message }, 'agent offline');
    this.#init.onChange();
  }

  #onCommand(link: AgentLink, f: CmdFrame): void {
    if (f.command === Command.PORT_QUERY) this.registry.onScanReply(link, f.id, f.params);
    else if (f.command === Command.ALLOWLIST && link.mux.features & Feature.ALLOWLIST) {
      try {
        const rules = link.allowlist.feed(f.params) ? link.allowlist.rules() : null;
        if (rules) this.#init.log.info({ backend: link.name, allowlist: rules.length > 16 ? [...rules.slice(0, 16), `… ${rules.length} rules`] : rules }, 'agent told its allowlist');
      } catch (err) {
        link.mux.destroy(err as Error); // malformed: a protocol error, as for any bad frame
      }
    }
    else if (f.command === Command.AGENT_INFO && link.mux.features & Feature.INFO) {
      try {
        link.version = decodeAgentInfo(f.params).version;
      } catch (err) {
        link.mux.destroy(err as Error);
      }
    }
    else if (f.command === Command.E2E && link.mux.features & Feature.E2E && this.#init.e2e) {
      try {
        this.#init.e2e.onAgentCommand(link, Buffer.from(f.params));
      } catch (err) {
        link.mux.destroy(err as Error);
      }
    }
    else if (f.command === Command.EXPOSE && link.mux.features & Feature.EXPOSE) {
      // A malformed request is a protocol error: close the link, as for any bad frame.
      this.#init.tunnels.request(link, f.id, f.params).catch((err: unknown) => link.mux.destroy(err instanceof Error ? err : new Error(String(err))));
    }
  }
}
