import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer, isIPv6, type Server, type Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { ConfigError } from '../config/errors.ts';
import { rendezvousListenKeys } from '../config/rendezvous-config.ts';
import { listenOn } from '../gateway/listen.ts';
import type { NetSet } from '../util/cidr.ts';
import type { Logger } from '../util/log.ts';
import { toV4IfMapped } from './addr-mangle.ts';
import { wsClientIp } from './ws-client-ip.ts';
import { ConnLimiter } from './conn-limiter.ts';
import { Deadline } from './deadline.ts';
import { encodeFrame, FrameDecoder } from './framing.ts';
import type { RendezvousMessage } from './gen/rendezvous_pb.ts';
import { decodeRendezvous } from './messages.ts';
import type { Addr, RdvConn, RendezvousCore, RendezvousEvents } from './rendezvous-core.ts';
import { KeyExchangeSource, type SecureChannel } from './secure-tcp.ts';
import type { ServerKeyPair } from './keys.ts';

/**
 * The sockets of the rendezvous (hbbs): UDP and TCP on the main port N, TCP on N−1 (NAT test,
 * online query) and WebSocket on N+2. It decodes, enforces the limits an unauthenticated sender
 * meets, and hands messages to the RendezvousCore. docs/rendezvous.md §2.
 */
export interface RendezvousServerOptions {
  bind: string;
  /** 0 = any free port (tests). */
  port: number;
  natPort: number;
  /** null = no WebSocket listener. */
  wsPort: number | null;
  /** Offer secure TCP (KeyExchange) on TCP connections to N. */
  secureTcp: boolean;
  keys: ServerKeyPair;
  maxDatagram: number;
  maxFrame: number;
  /** Seconds between messages before a connection is closed (hbbs: 30). */
  idleS: number;
  /** A TCP-registered peer's connection: the heartbeat interval; silent for 3 × this, it is closed. */
  heartbeatS: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  /** Proxies whose X-Real-IP / X-Forwarded-For are believed on the WebSocket port. */
  trustedProxies: NetSet | null;
  /** Addresses the operator blocked: their datagrams are dropped, their connections closed. */
  blocked: (ip: string) => boolean;
  log: Logger;
}

/** A connection that has not read this many bytes we wrote is not reading: it is closed. */
const MAX_UNREAD = 256 * 1024;

export class RendezvousServer {
  readonly #o: RendezvousServerOptions;
  readonly #core: RendezvousCore;
  readonly #ev: RendezvousEvents;
  readonly #limiter: ConnLimiter;
  readonly #conns = new Set<MainConn>();
  readonly #wsConns = new Set<WsConn>();
  #udp: UdpSocket | null = null;
  #tcp: Server | null = null;
  #nat: Server | null = null;
  #ws: WebSocketServer | null = null;
  #wsHttp: HttpServer | null = null;
  #heartbeat: NodeJS.Timeout | null = null;
  #udp6 = false;
  #kx: KeyExchangeSource | null = null;

  private constructor(o: RendezvousServerOptions, core: RendezvousCore, ev: RendezvousEvents) {
    this.#o = o;
    this.#core = core;
    this.#ev = ev;
    this.#limiter = new ConnLimiter(o.maxConnections, o.maxConnectionsPerIp);
  }

  /** Opens every port, or none: a port in use closes what was opened and throws. */
  static async listen(o: RendezvousServerOptions, core: RendezvousCore, ev: RendezvousEvents): Promise<RendezvousServer> {
    const s = new RendezvousServer(o, core, ev);
    try {
      await s.#open();
    } catch (e) {
      await s.close();
      throw e;
    }
    return s;
  }

  get port(): number {
    return (this.#tcp?.address() as { port: number } | null)?.port ?? 0;
  }
  get udpPort(): number {
    return this.#udp?.address().port ?? 0;
  }
  get natPort(): number {
    return (this.#nat?.address() as { port: number } | null)?.port ?? 0;
  }
  get wsPort(): number | null {
    return this.#wsHttp ? (this.#wsHttp.address() as { port: number }).port : null;
  }
  get connections(): number {
    return this.#limiter.total;
  }

  /** Sends a datagram from the main port (the core's way to reach a UDP-registered peer). */
  sendUdp(to: Addr, bytes: Uint8Array): void {
    const udp = this.#udp;
    if (!udp) return;
    const address = isIPv6(to.address) || !this.#udp6 ? to.address : `::ffff:${to.address}`;
    udp.send(bytes, to.port, address, (err) => { if (err) this.#ev.dropped('udp_send_error'); });
  }

  /** Closes every main-port connection from `ip` (it was just blocked). */
  dropFrom(ip: string): void {
    for (const c of this.#conns) if (c.remote.address === ip) c.socket.destroy();
  }

  async #open(): Promise<void> {
    const o = this.#o;
    if (o.secureTcp) this.#kx = new KeyExchangeSource(o.keys);
    this.#udp6 = isIPv6(o.bind) || o.bind === '::';
    const udp = createSocket({ type: this.#udp6 ? 'udp6' : 'udp4', ipv6Only: false, recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
    this.#udp = udp;
    udp.on('message', (msg, rinfo) => this.#datagram(msg, rinfo.address, rinfo.port));
    this.#tcp = createServer({ noDelay: true }, (s) => this.#acceptMain(s));
    this.#nat = createServer({ noDelay: true }, (s) => this.#acceptNat(s));
    await listenOn(this.#tcp, o.bind, o.port, rendezvousListenKeys('port'));
    // UDP N shares the TCP port number (ephemeral in tests: whatever TCP got).
    await new Promise<void>((resolve, reject) => {
      udp.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE'
        ? new ConfigError(`rendezvous.port ${o.port}: UDP port ${this.port} is already in use by another program; pick another base port with --rendezvous-port`)
        : e));
      udp.bind(o.port === 0 ? this.port : o.port, o.bind, () => { udp.removeAllListeners('error'); udp.on('error', (err) => o.log.warn({ err }, 'rendezvous UDP socket error')); resolve(); });
    });
    await listenOn(this.#nat, o.bind, o.natPort, rendezvousListenKeys('nat_port'));
    if (o.wsPort !== null) {
      // Only upgrades, with small headers, complete within `idle` of the accept.
      const idleMs = o.idleS * 1000;
      this.#wsHttp = createHttpServer({
        maxHeaderSize: 8 * 1024, requestTimeout: idleMs, headersTimeout: idleMs,
        connectionsCheckingInterval: Math.max(250, Math.min(30_000, Math.floor(idleMs / 2))),
      });
      this.#ws = new WebSocketServer({ noServer: true, maxPayload: o.maxFrame, perMessageDeflate: false });
      this.#wsHttp.on('request', (_req, res) => { res.writeHead(426, { connection: 'close', upgrade: 'websocket' }).end('WebSocket only\n'); });
      this.#wsHttp.on('clientError', (_e, socket: Socket) => socket.destroy());
      // A connection holds its slot from the accept, as on the other ports, so connections that
      // never upgrade cannot pile up; a trusted proxy's are counted at the upgrade, under the
      // client its headers name.
      const counted = new WeakSet<Socket>();
      this.#wsHttp.on('connection', (s: Socket) => {
        const remote = s.remoteAddress;
        if (remote === undefined) return void s.destroy();
        const ip = toV4IfMapped(remote);
        if (o.trustedProxies?.has(ip)) return;
        if (!this.#admit(ip)) return void s.destroy();
        counted.add(s);
        s.once('close', () => this.#limiter.release(ip));
      });
      this.#wsHttp.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
        const ip = wsClientIp(req, this.#o.trustedProxies);
        if (!counted.has(socket)) {
          if (!this.#admit(ip)) return void socket.destroy();
          socket.once('close', () => this.#limiter.release(ip));
        }
        this.#ws?.handleUpgrade(req, socket, head, (ws) => this.#acceptWs(ws, req, ip));
      });
      await listenOn(this.#wsHttp, o.bind, o.wsPort, rendezvousListenKeys('ws_port'));
    }
    this.#heartbeat = setInterval(() => this.#beat(), o.heartbeatS * 1000);
    this.#heartbeat.unref();
  }

  /** A connection from `ip` (already in its IPv4 form) may open (not blocked, under the limits): it then holds a slot. */
  #admit(ip: string): boolean {
    if (this.#o.blocked(ip)) {
      this.#ev.dropped('blocked');
      return false;
    }
    const r = this.#limiter.acquire(ip);
    if (r !== 'ok') this.#ev.dropped(r === 'total' ? 'connection_limit' : 'connection_limit_per_ip');
    return r === 'ok';
  }

  #datagram(msg: Buffer, address: string, port: number): void {
    if (msg.length > this.#o.maxDatagram) return this.#ev.dropped('datagram_too_large');
    const from = { address: toV4IfMapped(address), port };
    if (this.#o.blocked(from.address)) return this.#ev.dropped('blocked');
    let m: RendezvousMessage;
    try {
      m = decodeRendezvous(msg);
    } catch {
      return this.#ev.dropped('undecodable');
    }
    this.#core.udp(m, from, msg.length);
  }

  // ---- TCP N

  #acceptMain(s: Socket): void {
    const ip = s.remoteAddress;
    if (ip === undefined) return void s.destroy();
    const remote = { address: toV4IfMapped(ip), port: s.remotePort ?? 0 };
    if (!this.#admit(remote.address)) return void s.destroy();
    const conn = new MainConn(s, remote, this.#o.maxFrame);
    this.#conns.add(conn);
    const kx = this.#kx?.current() ?? null;
    if (kx) conn.writeFrame(kx.hello);
    let first = true;
    // Each message must be complete within `idle` of the previous one (hbbs: a timeout around
    // every read of a frame), however its bytes trickle in and whatever the server writes.
    conn.deadline.expectWithin(this.#o.idleS * 1000);
    s.on('data', (chunk: Buffer) => {
      let frames: Uint8Array[];
      try {
        frames = conn.decoder.decode(chunk);
      } catch {
        this.#ev.dropped('frame_too_large');
        return void s.destroy();
      }
      for (let f of frames) {
        if (s.destroyed) return;
        try {
          if (conn.channel) f = conn.channel.open(f);
        } catch {
          this.#ev.dropped('secure_tcp_bad_frame');
          return void s.destroy();
        }
        let m: RendezvousMessage;
        try {
          m = decodeRendezvous(f);
        } catch {
          this.#ev.dropped('undecodable');
          return void s.destroy();
        }
        // A TCP-registered peer: its answers to the heartbeats, 3 × their interval.
        conn.deadline.expectWithin(conn.registeredAs !== null ? this.#o.heartbeatS * 3000 : this.#o.idleS * 1000);
        if (first) {
          first = false;
          if (kx && m.union.case === 'keyExchange') {
            try {
              conn.channel = kx.accept(m.union.value.keys);
            } catch {
              this.#ev.dropped('secure_tcp_bad_exchange');
              return void s.destroy();
            }
            continue;
          }
        }
        this.#core.touch(conn);
        if (!this.#core.tcp(conn, m)) return void s.end();
        if (conn.registeredAs !== null) conn.deadline.expectWithin(this.#o.heartbeatS * 3000);
      }
    });
    s.on('error', () => undefined);
    s.once('close', () => {
      conn.deadline.stop();
      this.#conns.delete(conn);
      this.#limiter.release(remote.address);
      this.#core.closed(conn);
    });
  }

  /** Empty frames (messages) to TCP- and WebSocket-registered peers: they answer with one, which keeps them online. */
  #beat(): void {
    for (const c of this.#conns) if (c.registeredAs !== null) c.writeFrame(new Uint8Array(0));
    for (const c of this.#wsConns) if (c.registeredAs !== null) c.send(new Uint8Array(0));
  }

  // ---- TCP N−1

  #acceptNat(s: Socket): void {
    const ip = s.remoteAddress;
    if (ip === undefined) return void s.destroy();
    const remote = { address: toV4IfMapped(ip), port: s.remotePort ?? 0 };
    if (!this.#admit(remote.address)) return void s.destroy();
    const conn = new MainConn(s, remote, this.#o.maxFrame);
    // One message within `idle` of the accept, and the close after the answer too.
    conn.deadline.expectWithin(this.#o.idleS * 1000);
    s.on('data', (chunk: Buffer) => {
      let f: Uint8Array | undefined;
      try {
        conn.decoder.push(chunk);
        f = conn.decoder.next();
      } catch {
        this.#ev.dropped('frame_too_large');
        return void s.destroy();
      }
      if (f === undefined) return;
      s.removeAllListeners('data');
      s.pause();
      try {
        this.#core.natPort(conn, decodeRendezvous(f));
      } catch {
        this.#ev.dropped('undecodable');
      }
      s.end();
    });
    s.on('error', () => undefined);
    s.once('close', () => {
      conn.deadline.stop();
      this.#limiter.release(remote.address);
    });
  }

  // ---- WebSocket N+2

  #acceptWs(ws: WebSocket, req: IncomingMessage, ip: string): void {
    const direct = toV4IfMapped(req.socket.remoteAddress ?? '');
    // Behind a trusted proxy the port of the peer is unknown: 0, as hbbs does.
    const remote = { address: ip, port: ip === direct ? req.socket.remotePort ?? 0 : 0 };
    const conn = new WsConn(ws, remote);
    this.#wsConns.add(conn);
    // As on TCP: a message within `idle` of the previous one; a registered peer's heartbeat
    // answers within 3 × their interval.
    const idle = new Deadline(() => ws.terminate());
    idle.expectWithin(this.#o.idleS * 1000);
    ws.on('message', (data, isBinary) => {
      if (!isBinary) {
        this.#ev.dropped('ws_text');
        return void ws.close(1003, 'binary messages only');
      }
      idle.expectWithin(conn.registeredAs !== null ? this.#o.heartbeatS * 3000 : this.#o.idleS * 1000);
      let m: RendezvousMessage;
      try {
        m = decodeRendezvous(toBytes(data));
      } catch {
        this.#ev.dropped('undecodable');
        return void ws.close(1007, 'not a RendezvousMessage');
      }
      this.#core.touch(conn);
      if (!this.#core.tcp(conn, m)) return void ws.close(1000);
      if (conn.registeredAs !== null) idle.expectWithin(this.#o.heartbeatS * 3000);
    });
    ws.on('error', () => undefined);
    ws.once('close', () => {
      idle.stop();
      this.#wsConns.delete(conn);
      this.#core.closed(conn);
    });
  }

  async close(): Promise<void> {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    for (const c of this.#conns) c.socket.destroy();
    if (this.#ws) for (const c of this.#ws.clients) c.terminate();
    this.#ws?.close();
    try { this.#udp?.close(); } catch { /* not bound */ }
    const servers = [this.#tcp, this.#nat, this.#wsHttp].filter((srv): srv is Server | HttpServer => srv !== null && srv.listening);
    await Promise.all(servers.map((srv) => new Promise<void>((r) => srv.close(() => r()))));
  }
}

class MainConn implements RdvConn {
  readonly socket: Socket;
  readonly remote: Addr;
  readonly ws = false;
  readonly decoder: FrameDecoder;
  channel: SecureChannel | null = null;
  registeredAs: string | null = null;
  requests = 0;
  /** The next complete message is due by this; then the connection is destroyed. */
  readonly deadline: Deadline;

  constructor(socket: Socket, remote: Addr, maxFrame: number) {
    this.socket = socket;
    this.remote = remote;
    this.decoder = new FrameDecoder({ maxFrameSize: maxFrame });
    this.deadline = new Deadline(() => socket.destroy());
  }

  get closed(): boolean {
    return this.socket.destroyed || this.socket.writableEnded;
  }

  send(bytes: Uint8Array): void {
    this.writeFrame(this.channel && bytes.length > 0 ? this.channel.seal(bytes) : bytes);
  }

  writeFrame(payload: Uint8Array): void {
    if (this.closed) return;
    if (this.socket.writableLength > MAX_UNREAD) return void this.socket.destroy();
    this.socket.write(encodeFrame(payload));
  }

  close(): void {
    this.socket.end();
  }
}

class WsConn implements RdvConn {
  readonly #ws: WebSocket;
  readonly remote: Addr;
  readonly ws = true;
  registeredAs: string | null = null;
  requests = 0;

  constructor(ws: WebSocket, remote: Addr) {
    this.#ws = ws;
    this.remote = remote;
  }

  get closed(): boolean {
    return this.#ws.readyState !== this.#ws.OPEN;
  }

  send(bytes: Uint8Array): void {
    if (this.closed) return;
    if (this.#ws.bufferedAmount > MAX_UNREAD) return void this.#ws.terminate();
    this.#ws.send(bytes, { binary: true });
  }

  close(): void {
    this.#ws.close(1000);
  }
}

function toBytes(data: Buffer | ArrayBuffer | Buffer[]): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}
