import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { connectLink } from '../link/client.ts';
import type { LinkStream } from '../link/stream.ts';
import type { Logger } from '../util/log.ts';
import { Purpose, readLine, type ConnectReply, type ConnectRequest } from './protocol.ts';

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

export class ConnectRefusedError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * `dk connect`: listens locally; every local connection becomes its own link session to the
 * gateway, authorized by the API token, so it survives drops of the client's network as well
 * as of the agent's. Events: 'session' (stream), 'refused' (ConnectRefusedError).
 */
export class Forwarder {
  readonly o: ForwarderOptions;
  readonly streams = new Set<LinkStream>();
  readonly #locals = new Set<Socket>();
  #server: Server | null = null;
  refused: ConnectRefusedError[] = [];

  constructor(o: ForwarderOptions) {
    this.o = o;
  }

  async listen(): Promise<number> {
    this.#server = createServer({ allowHalfOpen: true, noDelay: true }, (s) => void this.#onLocal(s));
    this.#server.listen(this.o.localPort, this.o.bind);
    await once(this.#server, 'listening');
    return (this.#server.address() as { port: number }).port;
  }

  /** Opens one link session for a target and checks the gateway's answer. */
  async open(): Promise<LinkStream> {
    const stream = await connectLink({
      host: this.o.gatewayHost, port: this.o.gatewayPort, serverKey: this.o.gatewayKey, purpose: Purpose.CLIENT,
      resumeForMs: this.o.resumeForMs ?? 60_000,
      ...(this.o.pingMs ? { pingMs: this.o.pingMs } : {}), ...(this.o.deadMs ? { deadMs: this.o.deadMs } : {}),
    });
    const req: ConnectRequest = { token: this.o.token, backend: this.o.backend, port: this.o.port, ...(this.o.host ? { host: this.o.host } : {}) };
    stream.write(JSON.stringify(req) + '\n');
    let reply: ConnectReply;
    try {
      reply = JSON.parse(await readLine(stream, 15_000)) as ConnectReply;
    } catch (e) {
      stream.destroy();
      throw new ConnectRefusedError('bad_reply', `the gateway did not answer the connect request: ${(e as Error).message}`);
    }
    if (!reply.ok) {
      stream.destroy();
      throw new ConnectRefusedError(reply.code ?? 'refused', reply.message ?? 'refused');
    }
    return stream;
  }

  async #onLocal(local: Socket): Promise<void> {
    local.pause();
    local.on('error', () => undefined);
    this.#locals.add(local);
    local.once('close', () => this.#locals.delete(local));
    let stream: LinkStream;
    try {
      stream = await this.open();
    } catch (e) {
      const err = e instanceof ConnectRefusedError ? e : new ConnectRefusedError((e as { code?: string }).code ?? 'link', (e as Error).message);
      this.refused.push(err);
      this.o.log.error({ code: err.code, err: err.message }, 'dk connect: the gateway refused this connection');
      local.destroy();
      return;
    }
    this.streams.add(stream);
    stream.on('error', (e: Error & { code?: string }) => {
      this.o.log.warn({ code: e.code, err: e.message }, 'dk connect: link session ended with an error');
      local.destroy();
    });
    stream.on('close', () => this.streams.delete(stream));
    let localEnded = false;
    local.on('end', () => { localEnded = true; });
    local.on('close', () => {
      // A local close without FIN (reset) aborts the session; a clean one lets the FIN travel.
      if (!localEnded) stream.destroy();
    });
    local.pipe(stream);
    stream.pipe(local);
    local.resume();
  }

  close(): void {
    this.#server?.close();
    for (const s of this.streams) s.destroy();
    for (const l of this.#locals) l.destroy();
  }
}
