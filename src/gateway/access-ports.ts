import type { Socket } from 'node:net';
import type { Listeners } from './listeners.ts';

/**
 * The access ports (SPEC §2: opened on demand upward from serv_port+1, closed when idle), kept in
 * the gateway's one table of listeners. Opening tries the next port in range that nobody holds,
 * skipping ports another program holds (EADDRINUSE), so a stale port never blocks allocation.
 */
export class AccessPorts {
  readonly #listeners: Listeners;
  readonly #range: [number, number];
  readonly #mine = new Set<number>();
  readonly #onConnection: (port: number, socket: Socket) => void;

  constructor(listeners: Listeners, range: [number, number], onConnection: (port: number, socket: Socket) => void) {
    this.#listeners = listeners;
    this.#range = range;
    this.#onConnection = onConnection;
  }

  ports(): number[] {
    return [...this.#mine];
  }
  has(port: number): boolean {
    return this.#mine.has(port);
  }
  inRange(port: number): boolean {
    return port >= this.#range[0] && port <= this.#range[1];
  }

  /** Listens on exactly `port`; false if it is taken. */
  async open(port: number): Promise<boolean> {
    if (this.#mine.has(port)) return true;
    if (await this.#listeners.open(port, (s) => this.#onConnection(port, s)) !== null) return false;
    this.#mine.add(port);
    return true;
  }

  /** Opens the lowest free port in range; null if the range is exhausted. */
  async openNext(): Promise<number | null> {
    for (let p = this.#range[0]; p <= this.#range[1]; p++) {
      if (this.#listeners.has(p)) continue;
      if (await this.open(p)) return p;
    }
    return null;
  }

  close(port: number): void {
    if (!this.#mine.delete(port)) return;
    this.#listeners.close(port);
  }

  closeAll(): void {
    for (const p of this.ports()) this.close(p);
  }
}
