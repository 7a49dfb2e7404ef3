import { createServer, type Server, type Socket } from 'node:net';

/**
 * Every TCP port the gateway opens on demand — access ports and static tunnels alike — is one
 * listener here: opened on a port with a connection handler, closed when its owner is done. One
 * table, so each owner can see which ports the other holds.
 */
export class Listeners {
  readonly #servers = new Map<number, Server>();
  readonly #bind: string;

  constructor(bind: string) {
    this.#bind = bind;
  }

  has(port: number): boolean {
    return this.#servers.has(port);
  }
  ports(): number[] {
    return [...this.#servers.keys()];
  }

  /** Listens on exactly `port`; returns null, or why not (e.g. another program holds it). */
  async open(port: number, onConnection: (socket: Socket) => void): Promise<string | null> {
    if (this.#servers.has(port)) return `port ${port} is already open here`;
    const server = createServer({ allowHalfOpen: true, noDelay: true }, onConnection);
    const err = await new Promise<string | null>((resolve) => {
      server.once('error', (e) => resolve(e.message));
      server.listen({ host: this.#bind, port }, () => resolve(null));
    });
    if (err !== null) return err;
    if (this.#servers.has(port)) { // opened twice at once: keep the first
      server.close();
      return `port ${port} is already open here`;
    }
    server.on('error', () => undefined);
    this.#servers.set(port, server);
    return null;
  }

  close(port: number): void {
    const s = this.#servers.get(port);
    if (!s) return;
    this.#servers.delete(port);
    s.close();
  }

  closeAll(): void {
    for (const p of this.ports()) this.close(p);
  }
}
