import type { Socket } from 'node:net';
import type { GatewayConfig } from '../config/gateway-config.ts';
import { bytesToIp, Command, decodeExpose, encodeExposeReply, ExposeStatus, normalizeIp } from '../protocol/index.ts';
import { NetSet, wireToCidr } from '../util/cidr.ts';
import type { Logger } from '../util/log.ts';
import { PortSet } from '../util/port-range.ts';
import type { AgentLink } from './agents.ts';
import type { Backends } from './backends.ts';
import { streamEnd } from './client-end.ts';
import type { FailureLog } from './failure-log.ts';
import type { Listeners } from './listeners.ts';
import type { GatewayMetrics } from './metrics.ts';
import type { SessionTable } from './session-table.ts';

interface Tunnel {
  port: number;
  link: AgentLink;
  allow: NetSet;
  target: { host: string; port: number };
}

export interface StaticTunnelsInit {
  config: Pick<GatewayConfig, 'expose_ports' | 'max_exposes_per_agent' | 'mgmt_port'>;
  listeners: Listeners;
  sessions: SessionTable;
  backends: Backends;
  metrics: GatewayMetrics;
  log: Logger;
  refusals: FailureLog;
  /** Ports no agent may take: serv_port and the access range (decided by their owners). */
  reserved: (port: number) => boolean;
}

/**
 * Static tunnels (EXPOSE): an agent publishes a local service on a fixed gateway port, for
 * everyone or for some source networks. The listener lives in the gateway's one table of
 * listeners; connections become sessions in the session table like any other.
 */
export class StaticTunnels {
  readonly #tunnels = new Map<number, Tunnel>();
  readonly #init: StaticTunnelsInit;

  constructor(init: StaticTunnelsInit) {
    this.#init = init;
  }

  list(): { port: number; backend: string; target: string; allow: readonly string[] }[] {
    return [...this.#tunnels.values()].map((e) => ({ port: e.port, backend: e.link.name, target: `${e.target.host}:${e.target.port}`, allow: e.allow.entries }));
  }

  /** An EXPOSE request from `link`; a malformed one throws (a protocol error for the link). */
  async request(link: AgentLink, id: number, params: Buffer): Promise<void> {
    const { config, refusals, metrics, listeners } = this.#init;
    const reply = (status: number, msg: string): void => link.mux.command(id, Command.EXPOSE, encodeExposeReply(status, msg));
    const req = decodeExpose(params);
    const port = req.remotePort;
    const allowed = this.#init.backends.get(link.name)?.exposePorts ?? PortSet.parse(config.expose_ports);
    if (!allowed.has(port) || port === config.mgmt_port || this.#init.reserved(port)) {
      refusals.fail(`backend ${link.name}`, `expose_port_not_allowed ${port}`);
      return reply(ExposeStatus.REFUSED, `port ${port} is not open to static tunnels on this gateway`);
    }
    const held = this.#tunnels.get(port);
    if (held && held.link.name !== link.name) return reply(ExposeStatus.IN_USE, `port ${port} is published by another backend`);
    // Listeners being set up count too: requests arrive faster than listen() completes.
    const max = config.max_exposes_per_agent;
    if (held?.link !== link && link.exposes.size + link.exposesPending >= max) {
      metrics.limitsHit.inc({ limit: 'max_exposes_per_agent' });
      refusals.fail(`backend ${link.name}`, 'max_exposes_per_agent');
      return reply(ExposeStatus.REFUSED, `this agent already publishes ${max} static tunnels, the most this gateway allows (max_exposes_per_agent)`);
    }
    if (held) this.close(port, held.link);
    const allow = new NetSet(req.allow.length > 0 ? req.allow.map(wireToCidr) : ['*']);
    const target = { host: bytesToIp(req.target), port: req.targetPort };
    link.exposesPending++;
    const err = await listeners.open(port, (s) => this.#onConnection(port, s)).finally(() => { link.exposesPending--; });
    if (err !== null) return reply(ExposeStatus.IN_USE, `cannot listen on port ${port}: ${err}`);
    if (link.mux.closed) return void listeners.close(port);
    this.#tunnels.set(port, { port, link, allow, target });
    link.exposes.add(port);
    this.#init.log.info({ backend: link.name, port, target, allow: allow.entries }, 'static tunnel published');
    reply(ExposeStatus.OK, 'ok');
  }

  /** Closes `link`'s tunnel on `port` (not another link's that took it over). */
  close(port: number, link: AgentLink): void {
    const e = this.#tunnels.get(port);
    if (!e || e.link !== link) return;
    this.#tunnels.delete(port);
    link.exposes.delete(port);
    this.#init.listeners.close(port);
  }

  closeFor(link: AgentLink): void {
    for (const port of [...link.exposes]) this.close(port, link);
  }

  #onConnection(port: number, socket: Socket): void {
    const e = this.#tunnels.get(port);
    const ip = normalizeIp(socket.remoteAddress);
    socket.on('error', () => undefined);
    if (!e || e.link.mux.closed || !e.allow.has(ip)) {
      this.#init.metrics.connectionsRefused.inc({ reason: e ? 'source_not_allowed' : 'no_tunnel' });
      socket.destroy();
      return;
    }
    this.#init.sessions.start(streamEnd(socket, socket.remotePort ?? 0), e.link, {
      kind: 'expose', grantId: null, user: null, clientIp: ip, accessPort: port, host: e.target.host, port: e.target.port,
    });
  }
}
