/**
 * The RustDesk-compatible relay (hbbr, rustdesk-server src/relay_server.rs): TCP on port N+1 and
 * WebSocket on N+3. Each side of a relayed connection opens a connection, sends one RequestRelay
 * (a BytesCodec frame on TCP, a binary message on WebSocket) naming a uuid, and the relay pairs
 * the two connections with the same uuid and moves bytes between them (relay-pipe.ts).
 *
 * Nothing is ever sent back: a refused connection is closed without a word, as hbbr does.
 * Deliberately not copied from hbbr (docs/rendezvous.md): the loopback admin console on the relay
 * port, the unlimited tables, and a uuid being reusable while its pair is live.
 * The owner (the gateway) supplies configuration, logging and the hooks it turns into metrics
 * and audit records; this file knows nothing of the gateway.
 */
import { once } from 'node:events';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { WebSocketServer, type WebSocket } from 'ws';
import { rendezvousListenKeys } from '../config/rendezvous-config.ts';
import { listenOn } from '../gateway/listen.ts';
import type { NetSet } from '../util/cidr.ts';
import type { Logger } from '../util/log.ts';
import { toV4IfMapped } from './addr-mangle.ts';
import { FrameDecoder } from './framing.ts';
import { TcpEnd, WsEnd, type RelayEnd } from './relay-end.ts';
import { RelayPairing, type PairingRefusal } from './relay-pairing.ts';
import { RelayPipe, type PipeEndReason } from './relay-pipe.ts';
import { checkRelayRequest, type RequestRefusal } from './relay-request.ts';
import { sourceKey } from './source-key.ts';
import { wsClientIp } from './ws-client-ip.ts';

/**
 * Why the relay closed a connection that never became part of a pair:
 * overload / per_ip: connection caps; timeout: no complete first message in time;
 * frame_too_large: a first message over `maxFrameSize`; the RequestRelay checks
 * (relay-request.ts); the pairing table's caps (relay-pairing.ts); pair_timeout: no partner came.
 */
export type RelayRefusal = 'blocked' | 'overload' | 'per_ip' | 'timeout' | 'frame_too_large' | RequestRefusal | PairingRefusal | 'pair_timeout';

export interface RelayHooks {
  /** Two halves were paired: `ipA` waited, `ipB` completed the pair; `ws`: either is a WebSocket. */
  paired?(info: { uuid: string; id?: string; ipA: string; ipB: string; ws: boolean }): void;
  /** A pair ended; bytes as received from each side. */
  ended?(info: { uuid: string; bytesAtoB: number; bytesBtoA: number; ms: number; reason: PipeEndReason }): void;
  /** A connection was closed without being paired. */
  refused?(info: { ip: string; reason: RelayRefusal }): void;
}

export interface RelayServerOptions {
  /** Address to listen on (hbbr: `[::]` dual-stack). */
  bind: string;
  /** TCP relay port (hbbs base N + 1; 0 = ephemeral). */
  tcpPort: number;
  /** WebSocket relay port (N + 3; 0 = ephemeral), or null for none. */
  wsPort: number | null;
  /** The licence key every RequestRelay must carry, or null to accept any (hbbr's default). */
  key: string | null;
  /**
   * Reverse proxies in front of the WebSocket port whose X-Forwarded-For / X-Real-IP name the
   * client (hbbr reads neither). Their connections count against the named client's address for
   * the per-IP caps, and the hooks report that address. Null or absent: none.
   */
  trustedProxies?: NetSet | null;
  log: Logger;
  hooks?: RelayHooks;
  /** Addresses the operator blocked (the rendezvous's block list): closed at accept. */
  blocked?: (ip: string) => boolean;
  /** From accept to a complete first message, WebSocket handshake included (hbbr: 30 s). */
  firstFrameTimeoutMs?: number;
  /** How long a first half waits for its partner (hbbr: 30 s). */
  pairTimeoutMs?: number;
  /** A pair with nothing received either way for this long is closed (hbbr: 30 s). */
  idleTimeoutMs?: number;
  /** Waiting halves, in total and per source IP. */
  maxPending?: number;
  maxPendingPerIp?: number;
  /** Open connections (any state), in total and per source IP. */
  maxConnections?: number;
  maxConnectionsPerIp?: number;
  /** Largest first message (RequestRelay); hbbr has no limit. */
  maxFrameSize?: number;
  /** Largest WebSocket message, and largest frame from a TCP side paired with a WebSocket. */
  maxMessageSize?: number;
  /** Bytes a waiting half may send before its partner comes; then it is no longer read. */
  maxEarlyBytes?: number;
  /** How long a side closed gracefully may take before it is destroyed. */
  closeGraceMs?: number;
}

/** Defaults: hbbr's timeouts; limits hbbr does not have, sized for a small server. */
export const RELAY_DEFAULTS = {
  firstFrameTimeoutMs: 30_000,
  pairTimeoutMs: 30_000,
  idleTimeoutMs: 30_000,
  maxPending: 1_000,
  maxPendingPerIp: 64,
  maxConnections: 10_000,
  maxConnectionsPerIp: 256,
  // A RequestRelay is id, uuid, key, a token and a few small fields: well under 1 KiB in practice.
  maxFrameSize: 16 * 1024,
  // tungstenite's (hbbr's WebSocket library's) default largest frame; video key frames fit.
  maxMessageSize: 16 * 1024 * 1024,
  // A stock client sends a SignedId or an empty Message before pairing: well under a kilobyte.
  maxEarlyBytes: 64 * 1024,
  closeGraceMs: 5_000,
} as const;

export interface RelayStats {
  /** Open connections in any state. */
  connections: number;
  /** Connections that have not sent a complete RequestRelay yet. */
  handshaking: number;
  /** Halves waiting for their partner. */
  pending: number;
  /** Live pairs. */
  paired: number;
  /** Bytes the relay holds in memory for all connections (write queues, early bytes, partial frames). */
  queuedBytes: number;
  /** Pairs formed since start. */
  pairsTotal: number;
  /** Bytes received from paired sides since start, live pairs included. */
  bytesRelayed: number;
  /** Connections closed unpaired, by reason, since start. */
  refused: Partial<Record<RelayRefusal, number>>;
}

type State = 'handshake' | 'waiting' | 'paired';

interface Conn {
  /** The source address: the TCP peer's, or the client a trusted proxy's upgrade request names. */
  ip: string;
  /** Whether `ip` holds one of the per-IP slots (a trusted proxy's connection not before its upgrade). */
  counted: boolean;
  readonly socket: Socket;
  readonly transport: 'tcp' | 'ws';
  state: State;
  end: RelayEnd | null;
  deadline: number;
  decoder: FrameDecoder | null;
  /** WebSocket: raw bytes seen before the first message, to bound what ws buffers for it. */
  rawBytes: number;
  early: Buffer[];
  earlyBytes: number;
  uuid: string;
  id: string;
}

interface Pair {
  readonly uuid: string;
  readonly started: number;
  readonly conns: readonly [Conn, Conn];
  pipe: RelayPipe | null;
}

type Settings = Required<Omit<RelayServerOptions, 'hooks' | 'log' | 'key' | 'wsPort' | 'bind' | 'tcpPort' | 'trustedProxies' | 'blocked'>>;

/** Bytes beyond a first message a WebSocket may take for its framing before it is cut off. */
const WS_FRAMING_SLACK = 1024;

export class RelayServer {
  readonly #o: Settings;
  readonly #key: string | null;
  readonly #bind: string;
  readonly #log: Logger;
  readonly #hooks: RelayHooks;
  readonly #blocked: (ip: string) => boolean;
  readonly #trusted: NetSet | null;
  readonly #now = (): number => performance.now();
  readonly #tcp: NetServer;
  readonly #http: HttpServer | null;
  readonly #wss: WebSocketServer | null;
  readonly #pairing: RelayPairing<Conn>;
  readonly #conns = new Set<Conn>();
  /** Insertion order is deadline order: the sweep stops at the first one still in time. */
  readonly #handshaking = new Set<Conn>();
  readonly #wsConns = new WeakMap<Socket, Conn>();
  readonly #perIp = new Map<string, number>();
  readonly #pairs = new Set<Pair>();
  readonly #refused = new Map<RelayRefusal, number>();
  readonly #sweep: NodeJS.Timeout;
  #pairsTotal = 0;
  #bytesRelayed = 0;
  #closed = false;

  constructor(o: RelayServerOptions) {
    this.#o = { ...RELAY_DEFAULTS, ...definedOnly(o) };
    for (const [k, v] of Object.entries(this.#o)) {
      if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`relay option ${k} must be a non-negative integer, got ${String(v)}`);
    }
    this.#key = o.key;
    this.#bind = o.bind;
    this.#log = o.log;
    this.#hooks = o.hooks ?? {};
    this.#blocked = o.blocked ?? (() => false);
    this.#trusted = o.trustedProxies ?? null;
    this.#pairing = new RelayPairing<Conn>({
      pairTimeoutMs: this.#o.pairTimeoutMs,
      maxPending: this.#o.maxPending,
      maxPendingPerIp: this.#o.maxPendingPerIp,
      // Every pair holds two connections.
      maxPaired: Math.ceil(this.#o.maxConnections / 2),
      now: this.#now,
    });
    this.#tcp = createNetServer({ allowHalfOpen: true, noDelay: true }, (s) => this.#accept(s, 'tcp'));
    this.#tcp.on('error', (e) => this.#log.error({ err: e }, 'relay: TCP listener error'));
    if (o.wsPort === null) {
      this.#http = null;
      this.#wss = null;
    } else {
      this.#wss = new WebSocketServer({ noServer: true, maxPayload: this.#o.maxMessageSize, perMessageDeflate: false, clientTracking: false });
      // Only WebSocket upgrades: small headers, and the first-message deadline covers the handshake.
      this.#http = createHttpServer({ maxHeaderSize: 8 * 1024, requestTimeout: this.#o.firstFrameTimeoutMs });
      this.#http.on('connection', (s: Socket) => this.#accept(s, 'ws'));
      this.#http.on('upgrade', (req, socket: Socket, head: Buffer) => {
        const conn = this.#wsConns.get(socket);
        if (!conn || conn.state !== 'handshake' || this.#closed) return void socket.destroy();
        if (!conn.counted && !this.#countIp(conn, wsClientIp(req, this.#trusted))) return;
        this.#wss!.handleUpgrade(req, socket, head, (ws) => this.#wsOpen(conn, ws));
      });
      this.#http.on('request', (_req, res) => {
        res.writeHead(426, { connection: 'close', upgrade: 'websocket' }).end('WebSocket only\n');
      });
      this.#http.on('clientError', (_e, socket: Socket) => socket.destroy());
      this.#http.on('error', (e) => this.#log.error({ err: e }, 'relay: WebSocket listener error'));
    }
    const fastest = Math.min(this.#o.firstFrameTimeoutMs, this.#o.pairTimeoutMs, this.#o.idleTimeoutMs);
    // hbbr checks idleness every 3 s; a quarter of the shortest timeout keeps small test values honest.
    this.#sweep = setInterval(() => this.#sweepNow(), Math.max(5, Math.min(3_000, Math.floor(fastest / 4))));
    this.#sweep.unref();
  }

  /** Creates a relay and listens on its ports; rejects (and closes what opened) if one fails. */
  static async listen(o: RelayServerOptions): Promise<RelayServer> {
    const r = new RelayServer(o);
    try {
      await listenOn(r.#tcp, r.#bind, o.tcpPort, rendezvousListenKeys('relay_port'));
      if (r.#http && o.wsPort !== null) await listenOn(r.#http, r.#bind, o.wsPort, rendezvousListenKeys('relay_ws_port'));
    } catch (e) {
      await r.close();
      throw e;
    }
    o.log.info({ tcpPort: r.tcpPort, wsPort: r.wsPort, keyEnforced: o.key !== null && o.key !== '' }, 'relay listening');
    return r;
  }

  get tcpPort(): number {
    return (this.#tcp.address() as AddressInfo | null)?.port ?? 0;
  }

  get wsPort(): number | null {
    if (!this.#http) return null;
    return (this.#http.address() as AddressInfo | null)?.port ?? 0;
  }

  /** Closes every connection from `ip` (it was just blocked), paired or not. */
  dropFrom(ip: string): void {
    for (const c of [...this.#conns]) if (c.ip === ip) c.socket.destroy();
  }

  stats(): RelayStats {
    let queued = 0;
    for (const c of this.#conns) {
      if (c.state !== 'paired') queued += c.earlyBytes + (c.decoder?.buffered ?? 0) + (c.end?.queued() ?? 0);
    }
    let live = 0;
    for (const p of this.#pairs) {
      if (!p.pipe) continue;
      queued += p.pipe.queued();
      live += p.pipe.stats.bytesAtoB + p.pipe.stats.bytesBtoA;
    }
    return {
      connections: this.#conns.size,
      handshaking: this.#handshaking.size,
      pending: this.#pairing.pending,
      paired: this.#pairs.size,
      queuedBytes: queued,
      pairsTotal: this.#pairsTotal,
      bytesRelayed: this.#bytesRelayed + live,
      refused: Object.fromEntries(this.#refused),
    };
  }

  /** Stops listening and closes every connection, paired or not. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweep);
    const closing = [closeServer(this.#tcp), ...(this.#http ? [closeServer(this.#http)] : [])];
    for (const p of [...this.#pairs]) p.pipe?.close();
    for (const c of [...this.#conns]) c.socket.destroy();
    this.#wss?.close();
    await Promise.all(closing);
  }

  #accept(socket: Socket, transport: 'tcp' | 'ws'): void {
    const remote = socket.remoteAddress;
    // A connection reset before it was accepted has no address (FACTS §10).
    if (remote === undefined || this.#closed) return void socket.destroy();
    const ip = toV4IfMapped(remote);
    // A trusted proxy's connections are counted under the client its request names, at the upgrade.
    const proxied = transport === 'ws' && this.#trusted !== null && this.#trusted.has(ip);
    const refusal = this.#blocked(ip) ? 'blocked' : this.#conns.size >= this.#o.maxConnections ? 'overload' : !proxied && (this.#perIp.get(sourceKey(ip)) ?? 0) >= this.#o.maxConnectionsPerIp ? 'per_ip' : null;
    if (refusal) {
      socket.on('error', () => undefined);
      socket.destroy();
      return this.#refuse(ip, refusal);
    }
    const conn: Conn = {
      ip, counted: false, socket, transport, state: 'handshake', end: null, deadline: this.#now() + this.#o.firstFrameTimeoutMs,
      decoder: null, rawBytes: 0, early: [], earlyBytes: 0, uuid: '', id: '',
    };
    this.#conns.add(conn);
    this.#handshaking.add(conn);
    if (!proxied) this.#countIp(conn, ip);
    socket.once('close', () => this.#gone(conn));
    socket.setNoDelay(true);
    if (transport === 'ws') {
      socket.on('error', () => undefined);
      this.#wsConns.set(socket, conn);
      return;
    }
    const end = new TcpEnd(socket);
    conn.end = end;
    conn.decoder = new FrameDecoder({ maxFrameSize: this.#o.maxFrameSize });
    end.onEnd = () => socket.destroy();
    end.onData = (chunk) => {
      let frame: Uint8Array | undefined;
      try {
        conn.decoder!.push(chunk);
        frame = conn.decoder!.next();
      } catch {
        return this.#drop(conn, 'frame_too_large');
      }
      if (frame === undefined) return;
      const rest = conn.decoder!.takeRest();
      conn.decoder = null;
      this.#request(conn, frame, rest.length > 0 ? [rest] : []);
    };
  }

  #wsOpen(conn: Conn, ws: WebSocket): void {
    if (!this.#conns.has(conn)) return void ws.terminate();
    const end = new WsEnd(ws);
    conn.end = end;
    end.onEnd = () => end.destroy();
    // ws buffers a whole message before handing it over: count the raw bytes so a first message
    // cannot grow past maxFrameSize on the way.
    const count = (c: Buffer): void => {
      conn.rawBytes += c.length;
      if (conn.rawBytes > this.#o.maxFrameSize + WS_FRAMING_SLACK) this.#drop(conn, 'frame_too_large');
    };
    conn.socket.on('data', count);
    end.onData = (msg) => {
      conn.socket.off('data', count);
      if (msg.length > this.#o.maxFrameSize) return this.#drop(conn, 'frame_too_large');
      this.#request(conn, msg, []);
    };
  }

  /** Counts `conn` under `ip` for the per-IP caps; false (and the connection dropped) over the cap. */
  #countIp(conn: Conn, ip: string): boolean {
    conn.ip = ip;
    const key = sourceKey(ip);
    const n = this.#perIp.get(key) ?? 0;
    if (n >= this.#o.maxConnectionsPerIp) {
      this.#drop(conn, 'per_ip');
      return false;
    }
    conn.counted = true;
    this.#perIp.set(key, n + 1);
    return true;
  }

  /** The client a trusted proxy's upgrade request names (the proxy itself when it names none). */
  /** A complete first message arrived. */
  #request(conn: Conn, payload: Uint8Array, early: Buffer[]): void {
    this.#handshaking.delete(conn);
    const check = checkRelayRequest(payload, this.#key);
    if (!check.ok) return this.#drop(conn, check.reason);
    conn.uuid = check.uuid;
    conn.id = check.id;
    for (const c of early) this.#keepEarly(conn, c);
    const offer = this.#pairing.offer(check.uuid, sourceKey(conn.ip), conn);
    if (offer.kind === 'refused') return this.#drop(conn, offer.reason);
    if (offer.kind === 'paired') return this.#pair(offer.first, conn);
    conn.state = 'waiting';
    conn.end!.onData = (c) => this.#keepEarly(conn, c);
    this.#log.debug({ uuid: conn.uuid, ip: conn.ip, transport: conn.transport }, 'relay: half waiting');
  }

  /** Bytes (TCP) or a message (WebSocket) from a waiting half, kept for its partner. */
  #keepEarly(conn: Conn, chunk: Buffer): void {
    if (chunk.length === 0) return;
    conn.early.push(chunk);
    conn.earlyBytes += chunk.length;
    // Like hbbr, which does not read a waiting half at all: the rest stays in the kernel.
    if (conn.earlyBytes >= this.#o.maxEarlyBytes) conn.end!.pause();
  }

  #pair(a: Conn, b: Conn): void {
    a.state = 'paired';
    b.state = 'paired';
    this.#pairsTotal++;
    const pair: Pair = { uuid: b.uuid, started: this.#now(), conns: [a, b], pipe: null };
    this.#pairs.add(pair);
    const ws = a.transport === 'ws' || b.transport === 'ws';
    this.#log.debug({ uuid: pair.uuid, ipA: a.ip, ipB: b.ip, ws }, 'relay: paired');
    this.#call('paired', { uuid: pair.uuid, ...(a.id || b.id ? { id: a.id || b.id } : {}), ipA: a.ip, ipB: b.ip, ws });
    const earlyA = a.early;
    const earlyB = b.early;
    a.early = [];
    b.early = [];
    a.earlyBytes = 0;
    b.earlyBytes = 0;
    pair.pipe = new RelayPipe({
      a: a.end!, b: b.end!, earlyA, earlyB,
      maxMessageSize: this.#o.maxMessageSize,
      closeGraceMs: this.#o.closeGraceMs,
      now: this.#now,
      onEnd: (reason, s) => {
        this.#pairs.delete(pair);
        this.#pairing.release(pair.uuid);
        this.#bytesRelayed += s.bytesAtoB + s.bytesBtoA;
        const ms = Math.round(this.#now() - pair.started);
        this.#log.debug({ uuid: pair.uuid, reason, ...s, ms }, 'relay: pair ended');
        this.#call('ended', { uuid: pair.uuid, ...s, ms, reason });
      },
    });
  }

  /** Closes a connection that will not be paired, silently, as hbbr does. */
  #drop(conn: Conn, reason: RelayRefusal): void {
    if (!this.#conns.has(conn)) return;
    this.#handshaking.delete(conn);
    if (conn.state === 'waiting') this.#pairing.withdraw(conn.uuid, conn);
    conn.early = [];
    conn.earlyBytes = 0;
    conn.decoder = null;
    // Messages ws already parsed from the same read may still be delivered: nobody listens now.
    if (conn.end) conn.end.onData = null;
    conn.socket.destroy();
    this.#refuse(conn.ip, reason);
  }

  #refuse(ip: string, reason: RelayRefusal): void {
    this.#refused.set(reason, (this.#refused.get(reason) ?? 0) + 1);
    this.#log.debug({ ip, reason }, 'relay: connection refused');
    this.#call('refused', { ip, reason });
  }

  /** The raw socket closed, whatever the state. */
  #gone(conn: Conn): void {
    if (!this.#conns.delete(conn)) return;
    this.#handshaking.delete(conn);
    if (conn.state === 'waiting') this.#pairing.withdraw(conn.uuid, conn);
    conn.early = [];
    conn.earlyBytes = 0;
    if (!conn.counted) return;
    const key = sourceKey(conn.ip);
    const n = (this.#perIp.get(key) ?? 1) - 1;
    if (n > 0) this.#perIp.set(key, n);
    else this.#perIp.delete(key);
  }

  #sweepNow(): void {
    const now = this.#now();
    for (const c of this.#handshaking) {
      if (c.deadline > now) break;
      this.#drop(c, 'timeout');
    }
    for (const c of this.#pairing.sweep()) this.#drop(c, 'pair_timeout');
    for (const p of this.#pairs) p.pipe?.checkIdle(this.#o.idleTimeoutMs);
  }

  #call<K extends keyof RelayHooks>(name: K, info: Parameters<NonNullable<RelayHooks[K]>>[0]): void {
    const hook = this.#hooks[name] as ((i: typeof info) => void) | undefined;
    if (!hook) return;
    try {
      hook(info);
    } catch (e) {
      this.#log.warn({ err: e, hook: name }, 'relay: hook threw');
    }
  }
}

function definedOnly(o: RelayServerOptions): Partial<Settings> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(RELAY_DEFAULTS)) {
    const v = (o as unknown as Record<string, unknown>)[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

async function closeServer(server: NetServer): Promise<void> {
  if (!server.listening) return;
  const closed = once(server, 'close');
  server.close();
  await closed;
}
