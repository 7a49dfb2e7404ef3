import { createServer, type Server, type Socket } from 'node:net';

/**
 * The access-port listeners (SPEC §2: opened on demand upward from serv_port+1, closed when idle).
 * Opening tries the next port in range that is not already ours or reserved, skipping ports some
 * other program holds (EADDRINUSE), so a stale port never blocks allocation.
 */
export class AccessPorts {
  readonly #servers = new Map<number, Server>();
  readonly #bind: string;
  readonly #range: [number, number];
  readonly #onConnection: (port: number, socket: Socket) => void;

  constructor(bind: string, range: [number, number], onConnection: (port: number, socket: Socket) => void) {
    this.#bind = bind;
    this.#range = range;
    this.#onConnection = onConnection;
  }

  ports(): number[] {
    return [...this.#servers.keys()];
  }
  has(port: number): boolean {
    return this.#servers.has(port);
  }
  inRange(port: number): boolean {
    return port >= this.#range[0] && port <= this.#range[1];
  }

  /** Listens on exactly `port`; false if it is taken. */
  async open(port: number): Promise<boolean> {
    if (this.#servers.has(port)) return true;
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (s) => this.#onConnection(port, s));
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen({ host: this.#bind, port }, () => resolve(true));
    });
    if (!ok) return false;
    server.on('error', () => undefined);
    this.#servers.set(port, server);
    return true;
  }

  /** Opens the lowest free port in range not in `reserved`; null if the range is exhausted. */
  async openNext(reserved: ReadonlySet<number>): Promise<number | null> {
    for (let p = this.#range[0]; p <= this.#range[1]; p++) {
      if (this.#servers.has(p) || reserved.has(p)) continue;
      if (await this.open(p)) return p;
    }
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
