import { z } from 'zod';
import { bool, port, seconds } from './fields.ts';

/**
 * The `rendezvous:` section of the gateway config: the RustDesk-compatible rendezvous (hbbs) and
 * relay (hbbr). Off unless `port` is set. Ports are numbered as hbbs numbers them from one base N
 * (N−1 NAT test, N UDP+TCP, N+1 relay, N+2 WebSocket, N+3 WebSocket relay); each can be set on
 * its own. docs/rendezvous.md and docs/configuration.md describe every key.
 */
const count = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const RendezvousConfigSchema = z.object({
  /** The base port N (21116 in a stock RustDesk setup); unset = no rendezvous. */
  port: port.optional(),
  nat_port: port.optional(),
  relay_port: port.optional(),
  ws_port: port.optional(),
  relay_ws_port: port.optional(),
  /** WebSocket listeners (N+2, N+3). */
  websocket: bool.default(true),
  /**
   * The Key clients must send: "-" = the public key of id_ed25519 in the data dir (hbbs's
   * default), "" = nothing enforced (the key pair still signs), any other text = enforced as given.
   */
  key: z.string().default('-'),
  /** Relay servers told to peers (host:port), rotated; empty = clients use the rendezvous host, port+1. */
  relay_servers: z.preprocess((v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v), z.array(z.string())).default([]),
  /** Offer secure TCP (KeyExchange) on TCP connections to N: what clients logged in to an API server need. */
  secure_tcp: bool.default(true),
  /** ALWAYS_USE_RELAY: every connection goes through the relay. */
  always_use_relay: bool.default(false),
  /** ConfigUpdate serial sent to clients below it. */
  serial: count(0, 2 ** 31 - 1).default(0),
  /** Peers held in memory (the database keeps all); a new peer finding it full of online peers is refused. */
  max_peers: count(1, 10_000_000).default(1_000_000),
  /** Peers kept in the database; RegisterPk for a new id beyond is refused (SERVER_ERROR). */
  max_stored_peers: count(1, 1_000_000_000).default(5_000_000),
  /** RegisterPk per source address: more than this in a sliding minute is TOO_FREQUENT (hbbs: 30). */
  register_per_minute: count(1, 1_000_000).default(30),
  /** Distinct ids one source address may register per sliding day (hbbs: 300). */
  ids_per_ip_per_day: count(1, 1_000_000).default(300),
  /** Punch and relay requests forwarded to peers per source address and second, bursts of twice that; 0 = unlimited (hbbs). */
  forward_per_ip: count(0, 1_000_000).default(20),
  /** Open connections on all rendezvous and relay ports, and per source address. */
  max_connections: count(1, 1_000_000).default(10_000),
  max_connections_per_ip: count(1, 1_000_000).default(64),
  /** Largest datagram and TCP/WebSocket message read (rendezvous messages are a few hundred bytes). */
  max_datagram: count(64, 65_507).default(2048),
  max_frame: count(64, 4 * 1024 * 1024).default(64 * 1024),
  /** Seconds between messages before a rendezvous connection is closed (hbbs: 30). */
  idle: seconds.default(30),
  /** TCP-registered peers: keep_alive told to the client, and the heartbeat interval is half of it. */
  keep_alive: seconds.default(30),
  /** Relay: seconds a first half waits for its pair, and without data before a pair is closed (hbbr: 30, 30). */
  relay_pair_timeout: seconds.default(30),
  relay_idle: seconds.default(30),
  /** Relay halves waiting for their pair, overall and per source address. */
  relay_max_pending: count(1, 1_000_000).default(1024),
  relay_max_pending_per_ip: count(1, 1_000_000).default(16),
}).strict();

export type RendezvousConfig = z.infer<typeof RendezvousConfigSchema>;

export interface RendezvousPorts {
  port: number;
  natPort: number;
  relayPort: number;
  wsPort: number | null;
  relayWsPort: number | null;
}

/** The ports from the base N and the overrides; null when the rendezvous is off. */
export function rendezvousPorts(c: RendezvousConfig): RendezvousPorts | null {
  if (c.port === undefined) return null;
  const n = c.port;
  // Base 0 (tests): every listener takes a free port of its own.
  const at = (override: number | undefined, offset: number): number => override ?? (n === 0 ? 0 : n + offset);
  return {
    port: n,
    natPort: at(c.nat_port, -1),
    relayPort: at(c.relay_port, 1),
    wsPort: c.websocket ? at(c.ws_port, 2) : null,
    relayWsPort: c.websocket ? at(c.relay_ws_port, 3) : null,
  };
}

/** The setting a rendezvous or relay listener comes from, for the error when it cannot listen (gateway/listen.ts). */
export function rendezvousListenKeys(name: 'port' | 'nat_port' | 'ws_port' | 'relay_port' | 'relay_ws_port'): { port: string; portFlag: string; bind: string } {
  return { port: `rendezvous.${name}`, portFlag: name === 'port' ? '--rendezvous-port' : `rendezvous.${name} in the config file`, bind: 'bind' };
}
