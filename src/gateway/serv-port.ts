import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { HANDSHAKE_SIZE, verifyHandshake } from '../auth/handshake.ts';
import type { GatewayConfig } from '../config/gateway-config.ts';
import { Purpose } from '../connect/protocol.ts';
import type { KeyPair } from '../link/crypto.ts';
import { MAGIC as LINK_MAGIC } from '../link/handshake.ts';
import { COORD_MAGIC, RELAY_HEADER_BYTES, RELAY_MAGIC } from '../p2p/relay-header.ts';
import { LinkServer } from '../link/server.ts';
import type { LinkStream } from '../link/stream.ts';
import { Command, encodeCmd, encodeRefused, normalizeIp, RefusedReason } from '../protocol/index.ts';
import type { Logger } from '../util/log.ts';
import type { AuthGuard } from './auth-guard.ts';
import type { Backends } from './backends.ts';
import { GatewayStateError } from './errors.ts';
import { listenOn } from './listen.ts';
import type { GatewayMetrics } from './metrics.ts';
import { PreAuthGate } from './pre-auth.ts';
import type { SeedRepo } from './stores.ts';

/** The first bytes serv_port tells apart; anything else is the seed's plain agent handshake. */
const MAGICS = [LINK_MAGIC, RELAY_MAGIC, COORD_MAGIC];

/** How long a refused agent's link session may take to receive its REFUSED answer before it is cut. */
const REFUSED_LINGER_MS = 2000;

/** What serv_port hands on once a connection has proved who it is (or must still say so). */
export interface ServPortHandlers {
  backends: Backends;
  seeds: SeedRepo;
  linkKey: KeyPair;
  /** An agent authenticated (SPEC §4); `rest` is what it sent after its 32 bytes. */
  onAgent: (name: string, conn: Duplex, remote: string, rest: Buffer, overLink: boolean) => void;
  /**
   * A `dk connect` link session opened; it is still pending: `authenticated()` takes it out of
   * the pre-auth count once its token checks out (until then the handshake deadline holds).
   */
  onConnectClient: (stream: LinkStream, ip: string, authenticated: () => void) => void;
  /**
   * A connection that joins an end-to-end relay ("DKR1", docs/p2p.md §9); `head` holds at least
   * its header. True when its token was one the gateway handed out (it is then authenticated).
   */
  onRelay?: (socket: Socket, head: Buffer) => boolean;
  /**
   * A connection to the punch coordinator ("DKC1"); `rest` is what came after the magic. It stays
   * pending (the pre-auth limits and deadline hold) until `admitted()`: its hello named a punch
   * session the gateway made.
   */
  onCoord?: (socket: Socket, rest: Buffer, admitted: () => void) => void;
}

interface Serving {
  handlers: ServPortHandlers;
  link: LinkServer;
}

export interface ServPortInit {
  config: Pick<GatewayConfig, 'bind' | 'serv_port' | 'handshake' | 'max_pending_handshakes' | 'max_pending_per_ip' | 'link_detach_timeout' | 'link_window' | 'link_keepalive'>;
  metrics: GatewayMetrics;
  auth: AuthGuard;
  log: Logger;
}

/**
 * serv_port: takes connections, tells the encrypted link ("DKL1") from the seed's plain mode (its
 * 32-byte handshake first), runs the link handshake and the agent handshake, and counts every
 * connection that has not authenticated yet in one pre-auth gate (total cap, a share per source
 * address, one deadline for every step). It listens before the gateway's state is open, so a port
 * in use fails before anything is made; connections that come in between wait (bounded) until
 * `serve()` hands it what authenticating needs.
 */
export class ServPort {
  readonly #init: ServPortInit;
  readonly #gate: PreAuthGate;
  readonly #server: Server;
  /** Set by serve(): what authenticating needs, and the link server built from it. */
  #serving: Serving | null = null;
  #early: Socket[] = [];
  #sweeper: NodeJS.Timeout | null = null;

  constructor(init: ServPortInit) {
    this.#init = init;
    const c = init.config;
    this.#gate = new PreAuthGate({ max: c.max_pending_handshakes, maxPerIp: c.max_pending_per_ip, deadlineMs: c.handshake * 1000 });
    this.#server = createServer({ noDelay: true }, (s) => {
      if (this.#serving) this.#onConnection(s, this.#serving);
      // Before serve(): a close would look to an agent like a refusal, so it waits, bounded.
      else if (this.#early.length < c.max_pending_handshakes) this.#early.push(s.on('error', () => undefined));
      else s.destroy();
    });
  }

  get port(): number {
    return (this.#server.address() as { port: number } | null)?.port ?? 0;
  }
  /** The link server (tests look at its sessions); there is one once serve() ran. */
  get link(): LinkServer {
    if (!this.#serving) throw new GatewayStateError('serv_port is not serving yet');
    return this.#serving.link;
  }

  async listen(): Promise<void> {
    const c = this.#init.config;
    await listenOn(this.#server, c.bind, c.serv_port, { port: 'serv_port', portFlag: '--serv-port', bind: 'bind' });
    this.#server.on('error', (e) => this.#init.log.error({ err: e }, 'serv_port listener error'));
  }

  /** Starts authenticating: the connections that waited first. */
  serve(handlers: ServPortHandlers): void {
    const { config: c, metrics, auth } = this.#init;
    const link = new LinkServer({
      key: handlers.linkKey,
      detachTimeoutMs: c.link_detach_timeout * 1000,
      window: c.link_window,
      pingMs: c.link_keepalive * 1000,
      deadMs: c.link_keepalive * 3000,
      handshakeTimeoutMs: c.handshake * 1000,
      onStream: (stream, purpose, socket) => this.#onLinkStream(stream, purpose, socket, handlers),
      onError: (err, remote) => {
        metrics.agentAuthFailures.inc({ reason: 'link_handshake' });
        auth.failures.fail(remote.slice(0, remote.lastIndexOf(':')), `link_handshake: ${err.message.slice(0, 80)}`);
      },
      // A resume for a session the gateway no longer has: answered, logged like other failures
      // (once per source per interval), so a client that retries cannot fill the log.
      onResumeFailed: (err, remote) => auth.failures.fail(remote.slice(0, remote.lastIndexOf(':')), `link_resume_${err.reason}`),
    });
    const serving: Serving = { handlers, link };
    this.#serving = serving;
    // One timer for every pending handshake; each deadline holds to within one tick.
    this.#sweeper = setInterval(() => this.#gate.sweep(), Math.min(250, c.handshake * 250));
    this.#sweeper.unref();
    for (const early of this.#early.splice(0)) if (!early.destroyed) this.#onConnection(early, serving);
  }

  /** Takes no new connections and drops those not yet authenticated; link sessions stay. */
  stopAccepting(): void {
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#server.close();
    for (const s of this.#early.splice(0)) s.destroy();
    this.#gate.clear();
  }

  /** stopAccepting(), and every link session ends. */
  close(): void {
    this.stopAccepting();
    this.#serving?.link.close();
  }

  /**
   * serv_port carries both the encrypted link (first bytes "DKL1") and the seed's plain mode
   * (first bytes: the 32-byte handshake). A plain handshake whose random seed happens to start
   * with "DKL1" (odds 2^-32) fails and the agent retries with a new seed.
   */
  #onConnection(socket: Socket, { handlers: h, link }: Serving): void {
    const { metrics, auth } = this.#init;
    const ip = normalizeIp(socket.remoteAddress);
    const remote = `${ip}:${socket.remotePort}`;
    socket.on('error', () => undefined);
    // SPEC §2: one `handshake` deadline covers telling the modes apart, the link handshake and the
    // agent's (or dk connect client's) authentication; every step counts against the same gate.
    const refused = this.#gate.admit(socket, ip, () => this.#expired(socket, ip));
    if (refused) {
      metrics.preAuthRefused.inc({ reason: refused });
      auth.failures.fail(ip, refused === 'per_ip' ? 'too many pending handshakes from this address' : 'too many pending handshakes');
      socket.destroy();
      return;
    }
    socket.once('close', () => this.#gate.release(socket));
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const n = Math.min(head.length, 4);
      if (head.length < 4 && MAGICS.some((m) => head.subarray(0, n).equals(m.subarray(0, n)))) return; // wait for 4 bytes
      const relay = h.onRelay !== undefined && head.subarray(0, 4).equals(RELAY_MAGIC);
      if (relay && head.length < RELAY_HEADER_BYTES) return;
      socket.off('data', onData);
      socket.pause();
      if (relay) {
        if (h.onRelay!(socket, head)) this.#gate.release(socket);
        else metrics.preAuthRefused.inc({ reason: 'relay_token' });
      } else if (h.onCoord !== undefined && head.subarray(0, 4).equals(COORD_MAGIC)) {
        // Pending until its hello names a session the gateway made; then the coordinator's own
        // caps and deadlines hold (a punch's connection lives past `handshake`).
        h.onCoord(socket, head.subarray(4), () => this.#gate.release(socket));
      } else if (head.subarray(0, 4).equals(LINK_MAGIC)) {
        // A NEW handshake hands its pending entry on to the stream (#onLinkStream); a resume
        // proved the session's keys, so the connection is authenticated once it is attached.
        void link.handle(socket, head).then(() => this.#gate.release(socket));
      } else {
        this.#agentHandshake(socket, remote, head, false, h);
      }
    };
    socket.on('data', onData);
  }

  #onLinkStream(stream: LinkStream, purpose: number, socket: Socket, h: ServPortHandlers): void {
    const ip = normalizeIp(stream.remoteAddress);
    stream.on('error', () => undefined);
    const moved = this.#gate.transfer(socket, stream, () => this.#expired(stream, ip));
    if (!moved) return void stream.destroy(); // its deadline passed during the link handshake
    stream.once('close', () => this.#gate.release(stream));
    if (purpose === Purpose.AGENT) this.#agentHandshake(stream, `${ip}:${stream.remotePort}`, Buffer.alloc(0), true, h);
    else if (purpose === Purpose.CLIENT) h.onConnectClient(stream, ip, () => this.#gate.release(stream));
    else stream.destroy();
  }

  #expired(conn: Duplex, ip: string): void {
    this.#init.metrics.preAuthRefused.inc({ reason: 'timeout' });
    this.#init.auth.failures.fail(ip, 'handshake_timeout');
    conn.destroy();
  }

  /**
   * Inside the encrypted link the gateway has proved its key, so it can tell an agent whose proof
   * matched no backend why it is turned away (REFUSED, docs/protocol.md) and the agent can trust
   * it; then the session ends. The connection stays in the pre-auth gate until it closes (its
   * deadline still holds), and a peer that does not take the answer is dropped soon.
   */
  #answerRefused(conn: Duplex): void {
    conn.end(encodeCmd(0, Command.REFUSED, encodeRefused(RefusedReason.BAD_KEY, 'no backend on this gateway has this name with this key')));
    const drop = setTimeout(() => conn.destroy(), REFUSED_LINGER_MS);
    drop.unref();
    conn.once('close', () => clearTimeout(drop));
    conn.resume(); // take (and drop) whatever else the agent sent, so the session can finish
  }

  /**
   * The agent handshake (SPEC §4) on a plain socket or inside a link session. The connection is
   * pending in the pre-auth gate, whose deadline closes it if the 32 bytes do not come in time.
   */
  #agentHandshake(conn: Duplex, remote: string, initial: Buffer, overLink: boolean, h: ServPortHandlers): void {
    const chunks: Buffer[] = [];
    let have = 0;
    const refuse = (reason: string): void => {
      conn.off('data', onData);
      this.#init.metrics.agentAuthFailures.inc({ reason });
      this.#init.auth.failures.fail(remote.slice(0, remote.lastIndexOf(':')), `agent_${reason}`);
      if (overLink && reason === 'bad_hmac') return this.#answerRefused(conn);
      this.#gate.release(conn);
      conn.destroy();
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      have += chunk.length;
      if (have < HANDSHAKE_SIZE) return;
      conn.off('data', onData);
      const all = Buffer.concat(chunks, have);
      const ok = verifyHandshake(all.subarray(0, HANDSHAKE_SIZE), h.backends.credentials());
      if (!ok) return refuse('bad_hmac');
      if (!h.seeds.check(ok.seed)) return refuse('replay');
      this.#gate.release(conn);
      h.onAgent(ok.name, conn, remote, all.subarray(HANDSHAKE_SIZE), overLink);
    };
    conn.on('data', onData);
    if (initial.length > 0) onData(initial);
    conn.resume();
  }
}
