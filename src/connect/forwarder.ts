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
    const stream = await connectLink({
      host: this.o.gatewayHost, port: this.o.gatewayPort, serverKey: this.o.gatewayKey, purpose: Purpose.CLIENT,
      resumeForMs: this.o.resumeForMs ?? 60_000,
      ...(this.o.pingMs ? { pingMs: this.o.pingMs } : {}), ...(this.o.deadMs ? { deadMs: this.o.deadMs } : {}),
    });
    stream.on('error', () => undefined); // the mux reports it
    logResumeFailures(stream, this.o.log, 'dk connect link');
    const req: ConnectRequest = {
      token: this.o.token, backend: this.o.backend, port: this.o.port, ...(this.o.host ? { host: this.o.host } : {}), mux: true,
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
    return new Promise<Mux>((resolve, reject) => {
      const timer = setTimeout(() => mux.destroy(new NoHelloError(REPLY_TIMEOUT_MS)), REPLY_TIMEOUT_MS);
      const mux: Mux = new Mux(stream, {
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
          if (this.#current === mux) { this.#current = null; this.#mux = null; }
          const code = (err as { code?: string } | undefined)?.code ?? CLIENT_CODES.LINK;
          if (!this.#closed) this.o.log.warn({ code, err: err?.message }, 'dk connect: link session ended; the next connection opens a new one');
          reject(new ConnectRefusedError(code, err?.message ?? 'the link session ended'));
        },
      });
      this.#current = mux;
      stream.resume(); // readLine paused it; the gateway's HELLO may already be waiting
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
    for (const s of this.streams) s.destroy();
    for (const l of this.#locals) l.destroy();
  }
}

export { ConnectRefusedError } from './errors.ts';
