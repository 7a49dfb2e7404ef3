import { isIP } from 'node:net';
import type { Registry } from 'prom-client';
import { rendezvousPorts, type RendezvousConfig } from '../config/rendezvous-config.ts';
import type { NetSet } from '../util/cidr.ts';
import type { Logger } from '../util/log.ts';
import { toV4IfMapped } from './addr-mangle.ts';
import { IpBlocker } from './ip-blocker.ts';
import { loadOrCreateKeyFiles, type LoadedKeyFiles } from './keys.ts';
import { RendezvousMetrics } from './metrics.ts';
import type { PeerRepo } from './peer-store.ts';
import { PeerTable, REG_TIMEOUT_MS } from './peer-table.ts';
import { RendezvousCore, type RendezvousEvents } from './rendezvous-core.ts';
import { RendezvousServer } from './rendezvous-server.ts';
import { RelayServer } from './relay-server.ts';

/**
 * The RustDesk-compatible rendezvous as one subsystem the gateway composes: the hbbs key files in
 * the data dir, the peer table over its repo, the core and its sockets, metrics and audit.
 */
export interface RendezvousInit {
  config: RendezvousConfig;
  bind: string;
  dataDir: string;
  repo: PeerRepo;
  registry: Registry;
  log: Logger;
  trustedProxies: NetSet | null;
  audit: (e: { event: string; clientIp: string; target: string; detail: string }) => void;
}

export interface PeerView {
  id: string;
  online: boolean;
  /** ms since the epoch of the last accepted registration; null if not seen since start. */
  lastRegistration: number | null;
  ip: string;
  natType: 'unknown' | 'asymmetric' | 'symmetric' | null;
  transport: 'udp' | 'tcp' | null;
}

/** At most this many blocked addresses: the operator's list, not an attacker's. */
const MAX_BLOCKED = 100_000;

export class Rendezvous {
  readonly keys: LoadedKeyFiles;
  /** What clients must send as their Key ('' = nothing enforced). */
  readonly enforcedKey: string;
  readonly table: PeerTable;
  readonly metrics: RendezvousMetrics;
  readonly #server: RendezvousServer;
  readonly #relay: RelayServer;
  readonly #blocked: Set<string>;
  readonly #repo: PeerRepo;

  private constructor(keys: LoadedKeyFiles, enforcedKey: string, table: PeerTable, metrics: RendezvousMetrics, server: RendezvousServer, relay: RelayServer, blocked: Set<string>, repo: PeerRepo) {
    this.keys = keys;
    this.enforcedKey = enforcedKey;
    this.table = table;
    this.metrics = metrics;
    this.#server = server;
    this.#relay = relay;
    this.#blocked = blocked;
    this.#repo = repo;
  }

  static async start(init: RendezvousInit): Promise<Rendezvous> {
    const c = init.config;
    const ports = rendezvousPorts(c);
    if (!ports) throw new Error('rendezvous.port is not set');
    const keys = await loadOrCreateKeyFiles(init.dataDir);
    if (keys.created) init.log.info({ key: keys.keys.publicKeyBase64 }, 'rendezvous: made a new key pair (id_ed25519, id_ed25519.pub in the data dir)');
    if (keys.secretFileTooOpen) init.log.warn('rendezvous: id_ed25519 can be read by other users; chmod 600 it');
    const enforcedKey = c.key === '-' || c.key === '_' ? keys.keys.publicKeyBase64 : c.key;
    const metrics = new RendezvousMetrics(init.registry);
    const table = new PeerTable(init.repo, c.max_peers, Date.now, c.max_stored_peers);
    const blocker = new IpBlocker({ perMinute: c.register_per_minute, idsPerDay: c.ids_per_ip_per_day });
    const blocked = new Set(init.repo.blocked());
    const events: RendezvousEvents = {
      registration: (kind, transport, result) => metrics.registrations.inc({ kind, transport, result }),
      punch: (outcome) => metrics.punches.inc({ outcome }),
      relayRequest: (outcome) => metrics.relayRequests.inc({ outcome }),
      dropped: (reason) => metrics.dropped.inc({ reason }),
      audit: init.audit,
    };
    let server: RendezvousServer | null = null;
    const core = new RendezvousCore(table, blocker, (to, bytes) => server?.sendUdp(to, bytes), {
      enforcedKey, keys: keys.keys, relayServers: c.relay_servers, serial: c.serial, alwaysUseRelay: c.always_use_relay, keepAliveS: Math.round(c.keep_alive), forwardPerIp: c.forward_per_ip,
    }, events);
    server = await RendezvousServer.listen({
      bind: init.bind, port: ports.port, natPort: ports.natPort, wsPort: ports.wsPort, secureTcp: c.secure_tcp, keys: keys.keys,
      maxDatagram: c.max_datagram, maxFrame: c.max_frame, idleS: c.idle,
      // Every half keep_alive, and at least every third of REG_TIMEOUT: each answer keeps the peer online.
      heartbeatS: Math.min(c.keep_alive / 2, REG_TIMEOUT_MS / 3000),
      maxConnections: c.max_connections, maxConnectionsPerIp: c.max_connections_per_ip, trustedProxies: init.trustedProxies, log: init.log,
      blocked: (ip) => blocked.has(ip),
    }, core, events);
    let relay: RelayServer;
    try {
      relay = await RelayServer.listen({
        bind: init.bind, tcpPort: ports.relayPort, wsPort: ports.relayWsPort,
        // The relay runs beside the rendezvous: it enforces the same Key (hbbr's `-k -`).
        key: enforcedKey === '' ? null : enforcedKey,
        trustedProxies: init.trustedProxies, log: init.log, blocked: (ip) => blocked.has(ip),
        pairTimeoutMs: Math.round(c.relay_pair_timeout * 1000), idleTimeoutMs: Math.round(c.relay_idle * 1000),
        maxPending: c.relay_max_pending, maxPendingPerIp: c.relay_max_pending_per_ip,
        maxConnections: c.max_connections, maxConnectionsPerIp: c.max_connections_per_ip,
        hooks: {
          paired: (p) => {
            metrics.relayPairs.inc();
            metrics.relayActive.inc();
            init.audit({ event: 'rdv_relay_pair', clientIp: p.ipA, target: p.id || '?', detail: `uuid=${p.uuid} peer=${p.ipB}${p.ws ? ' websocket' : ''}` });
          },
          ended: (e) => {
            metrics.relayActive.dec();
            metrics.relayBytes.inc(e.bytesAtoB + e.bytesBtoA);
          },
          refused: (r) => metrics.relayRefused.inc({ reason: r.reason }),
        },
      });
    } catch (e) {
      await server.close();
      throw e;
    }
    const r = new Rendezvous(keys, enforcedKey, table, metrics, server, relay, blocked, init.repo);
    r.sweep();
    init.log.info({ port: server.port, udp: server.udpPort, nat_port: server.natPort, ws_port: server.wsPort, relay_port: relay.tcpPort, relay_ws_port: relay.wsPort, key: keys.keys.publicKeyBase64, enforced: enforcedKey !== '' }, 'rendezvous listening');
    return r;
  }

  /** Every port the rendezvous listens on (the relay's too, once it runs). */
  ports(): Record<string, number | null> {
    const s = this.#server;
    return { port: s.port, udp_port: s.udpPort, nat_port: s.natPort, ws_port: s.wsPort, relay_port: this.#relay.tcpPort, relay_ws_port: this.#relay.wsPort };
  }

  /** The relay's TCP port. */
  relayPort(): number {
    return this.#relay.tcpPort;
  }

  get relay(): RelayServer {
    return this.#relay;
  }

  get server(): RendezvousServer {
    return this.#server;
  }

  /** Peers for the API: the ones in memory, then stored ones, by id, from `after`. */
  peers(o: { after?: string; limit?: number; online?: boolean } = {}): PeerView[] {
    const limit = Math.min(o.limit ?? 100, 1000);
    const now = Date.now();
    const out: PeerView[] = [];
    const nat = ['unknown', 'asymmetric', 'symmetric'] as const;
    const inMemory = [...this.table.values()].filter((p) => p.id > (o.after ?? '') && (!o.online || this.table.isOnline(p, now)));
    inMemory.sort((a, b) => (a.id < b.id ? -1 : 1));
    const seen = new Set<string>();
    for (const p of inMemory.slice(0, limit)) {
      seen.add(p.id);
      out.push({
        id: p.id, online: this.table.isOnline(p, now), lastRegistration: p.lastRegTime || null, ip: p.address || p.ip,
        natType: p.natType >= 0 ? nat[p.natType] ?? 'unknown' : null, transport: p.route && !p.route.closed ? 'tcp' : p.port !== 0 ? 'udp' : null,
      });
    }
    if (!o.online) {
      for (const s of this.#repo.list(o.after ?? '', limit)) {
        if (!seen.has(s.id)) out.push({ id: s.id, online: false, lastRegistration: null, ip: s.ip, natType: null, transport: null });
      }
      out.sort((a, b) => (a.id < b.id ? -1 : 1));
    }
    return out.slice(0, limit);
  }

  deletePeer(id: string): boolean {
    return this.table.delete(id);
  }

  blocked(): string[] {
    return [...this.#blocked].sort();
  }

  /** Blocks a source address on every rendezvous port, now and after a restart. */
  block(ip: string): void {
    const a = toV4IfMapped(ip);
    if (isIP(a) === 0) throw new TypeError(`${ip} is not an IP address`);
    if (!this.#blocked.has(a) && this.#blocked.size >= MAX_BLOCKED) throw new RangeError(`at most ${MAX_BLOCKED} addresses can be blocked`);
    this.#repo.block(a);
    this.#blocked.add(a);
    this.#server.dropFrom(a);
    this.#relay.dropFrom(a);
  }

  unblock(ip: string): boolean {
    const a = toV4IfMapped(ip);
    this.#blocked.delete(a);
    return this.#repo.unblock(a);
  }

  sweep(): void {
    this.metrics.peersOnline.set(this.table.onlineCount());
    this.metrics.peersKnown.set(this.table.size);
  }

  async close(): Promise<void> {
    await Promise.all([this.#server.close(), this.#relay.close()]);
  }
}

export { REG_TIMEOUT_MS };
