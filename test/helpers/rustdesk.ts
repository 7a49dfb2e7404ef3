import { once } from 'node:events';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { RendezvousConfigSchema, type RendezvousConfig } from '../../src/config/rendezvous-config.ts';
import { encodeFrame, FrameDecoder } from '../../src/rendezvous/framing.ts';
import type { RendezvousMessage } from '../../src/rendezvous/gen/rendezvous_pb.ts';
import { openCombined } from '../../src/rendezvous/keys.ts';
import { decodeRendezvous, encodeRendezvous, type RendezvousMessageInit } from '../../src/rendezvous/messages.ts';
import { Rendezvous } from '../../src/rendezvous/rendezvous.ts';
import { clientKeyExchange, type SecureChannel } from '../../src/rendezvous/secure-tcp.ts';
import { openDb } from '../../src/store/db.ts';
import { SqlitePeerStore } from '../../src/store/sqlite-peer-store.ts';
import { silentLogger } from '../../src/util/log.ts';
import { Registry } from 'prom-client';

/**
 * The RustDesk roles, played by tests and the bench against the rendezvous: a peer's UDP socket,
 * a TCP connection framed with BytesCodec (optionally secured), a WebSocket. Each takes encoded
 * messages or raw bytes (the hand-written vectors), and hands back what arrives in order.
 */
type Out = RendezvousMessageInit | Uint8Array;
const bytesOf = (m: Out): Uint8Array => (m instanceof Uint8Array ? m : encodeRendezvous(m));

/** Arrivals in order, awaited one at a time with a deadline. */
class Inbox<T> {
  readonly #items: T[] = [];
  readonly #waiters: ((v: T | null) => void)[] = [];
  #ended = false;
  push(v: T): void {
    const w = this.#waiters.shift();
    if (w) w(v);
    else this.#items.push(v);
  }
  end(): void {
    this.#ended = true;
    for (const w of this.#waiters.splice(0)) w(null);
  }
  get ended(): boolean {
    return this.#ended;
  }
  /** The next item, or null at the end or after `ms`. */
  next(ms: number): Promise<T | null> {
    const v = this.#items.shift();
    if (v !== undefined) return Promise.resolve(v);
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        const i = this.#waiters.indexOf(done);
        if (i >= 0) this.#waiters.splice(i, 1);
        resolve(null);
      }, ms);
      const done = (x: T | null): void => {
        clearTimeout(t);
        resolve(x);
      };
      this.#waiters.push(done);
    });
  }
}

export class UdpPeer {
  readonly socket: UdpSocket;
  readonly inbox = new Inbox<{ bytes: Buffer; from: number }>();
  constructor(socket: UdpSocket) {
    this.socket = socket;
    socket.on('message', (bytes, r) => this.inbox.push({ bytes, from: r.port }));
  }
  static async open(localAddress = '127.0.0.1'): Promise<UdpPeer> {
    const s = createSocket('udp4');
    s.bind(0, localAddress);
    await once(s, 'listening');
    return new UdpPeer(s);
  }
  get address(): { address: string; port: number } {
    return this.socket.address();
  }
  send(m: Out, port: number, host = '127.0.0.1'): void {
    this.socket.send(bytesOf(m), port, host);
  }
  async nextBytes(ms = 2000): Promise<Buffer | null> {
    return (await this.inbox.next(ms))?.bytes ?? null;
  }
  async next(ms = 2000): Promise<RendezvousMessage | null> {
    const b = await this.nextBytes(ms);
    return b ? decodeRendezvous(b) : null;
  }
  close(): void {
    this.socket.close();
  }
}

export class TcpPeer {
  readonly socket: Socket;
  readonly frames = new Inbox<Uint8Array>();
  channel: SecureChannel | null = null;
  /** The server's signed box key, if it offered secure TCP. */
  constructor(socket: Socket) {
    this.socket = socket;
    const dec = new FrameDecoder();
    socket.on('data', (c: Buffer) => {
      try {
        for (const f of dec.decode(c)) this.frames.push(f);
      } catch {
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => this.frames.end());
  }
  static async connect(port: number, o: { localAddress?: string; localPort?: number; host?: string } = {}): Promise<TcpPeer> {
    const s = connect({ port, host: o.host ?? '127.0.0.1', localAddress: o.localAddress ?? '127.0.0.1', ...(o.localPort ? { localPort: o.localPort } : {}) });
    await once(s, 'connect');
    s.setNoDelay(true);
    return new TcpPeer(s);
  }
  get local(): { address: string; port: number } {
    return { address: this.socket.localAddress!, port: this.socket.localPort! };
  }
  /** One message (encrypted when secured); a Uint8Array is sent as the frame's payload. */
  send(m: Out): void {
    const b = bytesOf(m);
    this.socket.write(encodeFrame(this.channel && b.length > 0 ? this.channel.seal(b) : b));
  }
  /** Raw bytes on the stream, no framing. */
  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }
  /** The next frame's payload (decrypted when secured), or null at the end / after `ms`. */
  async nextPayload(ms = 3000): Promise<Uint8Array | null> {
    const f = await this.frames.next(ms);
    if (f === null) return null;
    return this.channel ? this.channel.open(f) : f;
  }
  /** The next message that is not a KeyExchange (as clients do: get_next_nonkeyexchange_msg). */
  async next(ms = 3000): Promise<RendezvousMessage | null> {
    for (;;) {
      const p = await this.nextPayload(ms);
      if (p === null) return null;
      const m = decodeRendezvous(p);
      if (m.union.case !== 'keyExchange') return m;
    }
  }
  /** secure_tcp as a logged-in client does it: verify the server's KeyExchange with `serverKey`, answer, then encrypt. */
  async secure(serverKey: Uint8Array, ms = 3000): Promise<Uint8Array> {
    const p = await this.frames.next(ms);
    if (p === null) throw new Error('no KeyExchange from the server');
    const m = decodeRendezvous(p);
    if (m.union.case !== 'keyExchange' || m.union.value.keys.length !== 1) throw new Error(`expected KeyExchange with one key, got ${m.union.case}`);
    const boxPk = openCombined(m.union.value.keys[0]!, serverKey);
    const kx = clientKeyExchange(boxPk);
    this.socket.write(encodeFrame(encodeRendezvous({ union: { case: 'keyExchange', value: { keys: kx.keys } } })));
    this.channel = kx.channel;
    return boxPk;
  }
  async closed(ms = 3000): Promise<boolean> {
    if (this.socket.destroyed || this.frames.ended) return true;
    return Promise.race([once(this.socket, 'close').then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
  }
  close(): void {
    this.socket.destroy();
  }
}

export class WsPeer {
  readonly ws: WebSocket;
  readonly inbox = new Inbox<Buffer>();
  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (d: Buffer) => this.inbox.push(d));
    ws.on('close', () => this.inbox.end());
    ws.on('error', () => undefined);
  }
  static async connect(port: number, headers: Record<string, string> = {}, localAddress = '127.0.0.1'): Promise<WsPeer> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers, localAddress });
    await once(ws, 'open');
    return new WsPeer(ws);
  }
  send(m: Out): void {
    this.ws.send(bytesOf(m), { binary: true });
  }
  async next(ms = 3000): Promise<RendezvousMessage | null> {
    const b = await this.inbox.next(ms);
    return b ? decodeRendezvous(b) : null;
  }
  close(): void {
    this.ws.terminate();
  }
}

export interface RdvFixture {
  rdv: Rendezvous;
  dir: string;
  port: number;
  natPort: number;
  wsPort: number;
  registry: Registry;
  audit: { event: string; clientIp: string; target: string; detail: string }[];
  close(keepDir?: boolean): Promise<void>;
}

/** A rendezvous on loopback with free ports and a fresh data dir (or `dir`). */
export async function startRendezvous(overrides: Partial<RendezvousConfig> = {}, dir?: string): Promise<RdvFixture> {
  const dataDir = dir ?? mkdtempSync(join(tmpdir(), 'dk-rdv-'));
  const db = openDb(dataDir);
  const registry = new Registry();
  const audit: RdvFixture['audit'] = [];
  const config = RendezvousConfigSchema.parse({ port: 0, ...overrides });
  const rdv = await Rendezvous.start({
    config, bind: '127.0.0.1', dataDir, repo: new SqlitePeerStore(db), registry, log: silentLogger, trustedProxies: null,
    audit: (e) => audit.push(e),
  });
  return {
    rdv, dir: dataDir, port: rdv.server.port, natPort: rdv.server.natPort, wsPort: rdv.server.wsPort ?? 0, registry, audit,
    async close(keepDir = false) {
      await rdv.close();
      db.close();
      if (!keepDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Registers `id` over UDP as a RustDesk client does on start: RegisterPk, then RegisterPeer. Returns the peer's key. */
export async function registerPeer(peer: UdpPeer, port: number, id: string, uuid = Buffer.from(`uuid-of-${id}`), pk: Uint8Array = Buffer.alloc(32, id.length)): Promise<Uint8Array> {
  peer.send({ union: { case: 'registerPk', value: { id, uuid, pk } } }, port);
  const r = await peer.next();
  if (r?.union.case !== 'registerPkResponse' || r.union.value.result !== 0) throw new Error(`RegisterPk ${id}: ${JSON.stringify(r?.union)}`);
  peer.send({ union: { case: 'registerPeer', value: { id, serial: 0 } } }, port);
  const r2 = await peer.next();
  if (r2?.union.case !== 'registerPeerResponse' || r2.union.value.requestPk) throw new Error(`RegisterPeer ${id}: ${JSON.stringify(r2?.union)}`);
  return pk;
}
