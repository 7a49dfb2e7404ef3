import { CLIENT_CODES, ConnectRefusedError, NoHelloError } from './errors.ts';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connectLink, logResumeFailures } from '../link/client.ts';
import type { LinkStream } from '../link/stream.ts';
import { bridge } from '../mux/bridge.ts';
import { Mux } from '../mux/mux.ts';
import type { CloseReason, MuxSession } from '../mux/session.ts';
import type { Logger } from '../util/log.ts';
import { Purpose, readLine, type ConnectReply, type ConnectRequest } from './protocol.ts';
import { E2ePath, type PathEvent } from './e2e-path.ts';
import { generateEd25519 } from '../p2p/ticket.ts';
import type { P2pMode } from '../p2p/e2e-messages.ts';

const REPLY_TIMEOUT_MS = 15_000;

/** How one carried local stream ended: refused before its session opened, or the session's close. */
export type CarryEnd = { refused: ConnectRefusedError } | { reason: CloseReason; bytesIn: number; bytesOut: number };

export interface ForwarderOptions {
  gatewayHost: string;
  gatewayPort: number;
  gatewayKey: Buffer;
  token: string;
  backend: string;
  port: number;
  host?: string;
  bind: string;
  localPort: number;
  /** How long each connection keeps trying to resume a dropped link. */
  resumeForMs?: number;
  pingMs?: number;
  deadMs?: number;
  log: Logger;
  /**
   * The end-to-end path (docs/p2p.md): `auto` (default) asks for it and lets it go direct, `off`
   * asks for it relayed only. A gateway or agent that cannot give it leaves the session on the
   * gateway's path, and says why (onPath).
   */
  p2p?: P2pMode;
  /** false: do not ask for the end-to-end path at all (the gateway's path; tests and the benchmark compare the two). */
  e2e?: boolean;
  /** The agent's link key, pinned (`--agent-key`): the end-to-end link talks to no other. */
  agentKey?: Buffer;
  /** Each path decision: `path=relay …`, `path=direct …`, or `path=gateway …` (dk connect prints it on stderr). */
  onPath?: (e: PathEvent | { path: 'gateway'; line: string; changes: number }) => void;
}

/**
 * `dk connect`: listens locally and carries every local connection as one mux session over a
 * single link session to the gateway. The link is authorized once by the API token (the gateway
 * checks the token and the target again for every session); it survives drops of the client's
 * network as the agent's link does. A lost link session ends its sessions, and the next local
 * connection opens a new one. Refusals are counted in `refused`; the last is `lastRefusal`.
 */
export class Forwarder {
  readonly o: ForwarderOptions;
  /** The link streams (one while connected; tests drop its connection). */
  readonly streams = new Set<LinkStream>();
  /** End-to-end paths in use (one while connected end to end). */
  readonly paths = new Set<E2ePath>();
  readonly #locals = new Set<Duplex>();
  #server: Server | null = null;
  #mux: Promise<Mux> | null = null;
  #current: Mux | null = null;
  #closed = false;
  /** Local connections the gateway refused, and the last refusal (a count, so memory stays bounded). */
  refused = 0;
  lastRefusal: ConnectRefusedError | null = null;

  constructor(o: ForwarderOptions) {
    this.o = o;
  }

  async listen(): Promise<number> {
    this.#server = createServer({ allowHalfOpen: true, noDelay: true }, (s) => void this.#onLocal(s));
    this.#server.listen(this.o.localPort, this.o.bind);
    await once(this.#server, 'listening');
    return (this.#server.address() as { port: number }).port;
  }

  /** The shared link's mux: the one in use, or a new link session authorized by the gateway. */
  open(): Promise<Mux> {
    if (!this.#mux) {
      const p = this.#connect();
      this.#mux = p;
      p.catch(() => { if (this.#mux === p) this.#mux = null; });
    }
    return this.#mux;
  }

  async #connect(): Promise<Mux> {
    // after_ms on the path=direct line counts from here: when this link was asked for (at start
    // with -L, at the first local connection with --stdio, at the next connection after a lost link).
    const startedAt = performance.now();
    const stream = await connectLink({
      host: this.o.gatewayHost, port: this.o.gatewayPort, serverKey: this.o.gatewayKey, purpose: Purpose.CLIENT,
      resumeForMs: this.o.resumeForMs ?? 60_000,
      ...(this.o.pingMs ? { pingMs: this.o.pingMs } : {}), ...(this.o.deadMs ? { deadMs: this.o.deadMs } : {}),
    });
    stream.on('error', () => undefined); // the mux reports it
    logResumeFailures(stream, this.o.log, 'dk connect link');
    const clientKey = generateEd25519();
    const req: ConnectRequest = {
      token: this.o.token, backend: this.o.backend, port: this.o.port, ...(this.o.host ? { host: this.o.host } : {}), mux: true,
      ...(this.o.e2e === false ? {} : { e2e: { client_key: clientKey.publicRaw.toString('base64url'), p2p: this.o.p2p ?? 'auto' } }),
    };
    stream.write(JSON.stringify(req) + '\n');
    let reply: ConnectReply;
    try {
      reply = JSON.parse(await readLine(stream, REPLY_TIMEOUT_MS)) as ConnectReply;
    } catch (e) {
      stream.destroy();
      throw new ConnectRefusedError(CLIENT_CODES.BAD_REPLY, `the gateway did not answer the connect request: ${(e as Error).message}`);
    }
    if (!reply.ok) {
      stream.destroy();
      throw new ConnectRefusedError(reply.code ?? 'refused', reply.message ?? 'refused');
    }
    if (this.#closed) {
      stream.destroy();
      throw new ConnectRefusedError(CLIENT_CODES.CLOSED, 'dk connect is shutting down');
    }
    this.streams.add(stream);
    stream.once('close', () => this.streams.delete(stream));
    // The end-to-end path: the mux runs on the link to the agent; this link stays as the control channel.
    let carrier: LinkStream = stream;
    let path: E2ePath | null = null;
    if (reply.e2e) {
      if (this.o.agentKey && !this.o.agentKey.equals(Buffer.from(reply.e2e.agent_key, 'base64url'))) {
        stream.destroy();
        throw new ConnectRefusedError('agent_key_mismatch', `the gateway says backend "${this.o.backend}"'s agent has the key ${reply.e2e.agent_key}, not the pinned --agent-key`);
      }
      path = new E2ePath({
        control: stream, grant: reply.e2e, clientKey: clientKey.privateKey, gatewayHost: this.o.gatewayHost, gatewayPort: this.o.gatewayPort,
        resumeForMs: this.o.resumeForMs ?? 60_000, log: this.o.log, startedAt, ...(this.o.onPath ? { onPath: this.o.onPath } : {}),
      });
      try {
        carrier = await path.open();
      } catch (e) {
        path.close();
        stream.destroy();
        throw e;
      }
      this.paths.add(path);
      this.streams.add(carrier);
      carrier.once('close', () => { this.streams.delete(carrier); this.paths.delete(path!); stream.destroy(); });
    } else if (this.o.agentKey) {
      // The pin is there so that the gateway never carries the session's plaintext: its own path would.
      stream.destroy();
      throw new ConnectRefusedError('e2e_unavailable', `the gateway offers no end-to-end link to backend "${this.o.backend}" (${reply.why ?? 'it did not say why'}); with --agent-key pinned, dk connect does not let the gateway carry the session itself`);
    } else if (reply.why) {
      this.o.onPath?.({ path: 'gateway', line: `path=gateway reason=${JSON.stringify(reply.why)}`, changes: 0 });
    }
    return new Promise<Mux>((resolve, reject) => {
      const timer = setTimeout(() => mux.destroy(new NoHelloError(REPLY_TIMEOUT_MS)), REPLY_TIMEOUT_MS);
      const mux: Mux = new Mux(carrier, {
        role: 'gateway',
        // No cap of our own on the sessions we open: the gateway enforces max_sessions_per_link
        // (and answers beyond it with CLS); OPNs from the gateway are refused anyway.
        maxSessions: Number.MAX_SAFE_INTEGER,
        // The link has its own keepalive and resumes; only a lost link session ends the mux.
        keepaliveMs: 0,
        deadAfterMs: 0,
        onHello: () => { clearTimeout(timer); resolve(mux); },
        onClose: (err) => {
          clearTimeout(timer);
          this.streams.delete(stream);
          path?.close();
          if (this.#current === mux) { this.#current = null; this.#mux = null; }
          const code = (err as { code?: string } | undefined)?.code ?? CLIENT_CODES.LINK;
          if (!this.#closed) this.o.log.warn({ code, err: err?.message }, 'dk connect: link session ended; the next connection opens a new one');
          reject(new ConnectRefusedError(code, err?.message ?? 'the link session ended'));
        },
      });
      this.#current = mux;
      carrier.resume(); // readLine paused it; the HELLO may already be waiting
    });
  }

  #onLocal(local: Socket): void {
    void this.carry(local).then((end) => {
      if ('refused' in end && end.refused.code !== CLIENT_CODES.LATE) this.o.log.error({ code: end.refused.code, err: end.refused.message }, 'dk connect: the gateway refused this connection');
    });
  }

  /**
   * Carries one local stream (a TCP connection, or stdin/stdout for `dk connect --stdio`) as one
   * mux session over the shared link. Resolves once it is over: refused (and why), or the
   * session's close reason and bytes each way. A refusal is counted here, and left to the caller to report.
   */
  async carry(local: Duplex): Promise<CarryEnd> {
    local.pause();
    local.on('error', () => undefined);
    this.#locals.add(local);
    local.once('close', () => this.#locals.delete(local));
    const refuse = (err: ConnectRefusedError): CarryEnd => {
      this.refused++;
      this.lastRefusal = err;
      local.destroy();
      return { refused: err };
    };
    let mux: Mux;
    try {
      mux = await this.open();
    } catch (e) {
      const err = e instanceof ConnectRefusedError ? e : new ConnectRefusedError((e as { code?: string }).code ?? CLIENT_CODES.LINK, (e as Error).message, { cause: e });
      return refuse(err);
    }
    if (mux.closed || local.destroyed) {
      local.destroy();
      return { refused: new ConnectRefusedError(CLIENT_CODES.LATE, mux.closed ? 'the link session ended before the session opened' : 'the local end closed first') };
    }
    let session: MuxSession;
    try {
      session = mux.open(this.o.port, this.o.host ?? '127.0.0.1');
    } catch (e) {
      // The link carries as many sessions as a mux holds (SessionLimitError): refuse this one.
      return refuse(new ConnectRefusedError((e as { code?: string }).code ?? CLIENT_CODES.LINK, (e as Error).message));
    }
    return new Promise<CarryEnd>((resolve) => bridge(session, local, (reason) => resolve({ reason, bytesIn: session.bytesIn, bytesOut: session.bytesOut })));
  }

  close(): void {
    this.#closed = true;
    this.#server?.close();
    this.#current?.destroy();
    for (const p of this.paths) p.close();
    for (const s of this.streams) s.destroy();
    for (const l of this.#locals) l.destroy();
  }
}

export { ConnectRefusedError } from './errors.ts';
