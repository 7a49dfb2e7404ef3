import { connect, createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';

/** mulberry32: a small seeded PRNG, so a failing fault schedule can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Fault = 'reset' | 'close' | 'blackhole' | 'oneway-then-kill' | 'fragment' | 'flip';

interface Pair {
  client: Socket;
  server: Socket;
  blackholed: boolean;
  blockUp: boolean;
  fragmentBytes: number;
  flipNext: 'up' | 'down' | null;
  born: number;
}

/**
 * A TCP proxy on loopback that injects faults into the connections passing through it: reset,
 * close, blackhole (keep both sockets open, forward nothing), drop one direction then kill,
 * fragment into 1-byte writes, and flip a ciphertext bit. Counts what it did.
 */
export class FaultProxy {
  readonly #server: Server;
  readonly #pairs = new Set<Pair>();
  readonly #target: number;
  readonly rand: () => number;
  readonly seed: number;
  port = 0;
  /** While true, new connections are closed at once (the peer "never returns"). */
  refuse = false;
  /** While true, a blackholed pair keeps its server-side socket open after the client side dies (a half-open socket at the server). */
  halfOpenServer = false;
  counts: Record<Fault, number> = { reset: 0, close: 0, blackhole: 0, 'oneway-then-kill': 0, fragment: 0, flip: 0 };
  connections = 0;

  constructor(targetPort: number, seed: number) {
    this.#target = targetPort;
    this.seed = seed;
    this.rand = prng(seed);
    this.#server = createServer((client) => this.#accept(client));
  }

  async listen(): Promise<this> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    this.port = (this.#server.address() as { port: number }).port;
    return this;
  }

  #accept(client: Socket): void {
    this.connections++;
    if (this.refuse) {
      client.destroy();
      return;
    }
    const server = connect({ host: '127.0.0.1', port: this.#target });
    const p: Pair = { client, server, blackholed: false, blockUp: false, fragmentBytes: 0, flipNext: null, born: Date.now() };
    this.#pairs.add(p);
    const kill = (): void => {
      this.#pairs.delete(p);
      client.destroy();
      server.destroy();
    };
    const clientGone = (): void => {
      if (p.blackholed && this.halfOpenServer) {
        this.#pairs.delete(p);
        this.halfOpen.push(server);
        return;
      }
      kill();
    };
    client.on('error', clientGone).on('close', clientGone);
    server.on('error', kill).on('close', kill);
    const forward = (from: Socket, to: Socket, dir: 'up' | 'down') => (chunk: Buffer): void => {
      if (p.blackholed || (dir === 'up' && p.blockUp)) return;
      let out = chunk;
      if (p.flipNext === dir && chunk.length > 0) {
        out = Buffer.from(chunk);
        const at = Math.floor(this.rand() * out.length);
        out[at] = out[at]! ^ (1 << Math.floor(this.rand() * 8));
        p.flipNext = null;
      }
      if (p.fragmentBytes > 0) {
        const n = Math.min(p.fragmentBytes, out.length);
        for (let i = 0; i < n; i++) to.write(out.subarray(i, i + 1));
        p.fragmentBytes -= n;
        out = out.subarray(n);
      }
      if (out.length > 0 && !to.write(out)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    };
    client.on('data', forward(client, server, 'up'));
    server.on('data', forward(server, client, 'down'));
  }

  /**
   * Applies one fault to every live connection at least `minAgeMs` old. A minimum age lets each
   * connection finish its resume handshake and move some data first: without it, on a loaded
   * machine, faults can arrive faster than handshakes complete and nothing makes progress.
   */
  inject(f: Fault, minAgeMs = 0): void {
    const now = Date.now();
    const targets = [...this.#pairs].filter((p) => now - p.born >= minAgeMs);
    if (targets.length === 0) return;
    this.counts[f]++;
    for (const p of targets) {
      switch (f) {
        case 'reset': p.client.resetAndDestroy(); p.server.resetAndDestroy(); break;
        case 'close': p.client.end(); p.server.end(); break;
        case 'blackhole': p.blackholed = true; break;
        case 'oneway-then-kill':
          p.blockUp = true;
          setTimeout(() => { p.client.destroy(); p.server.destroy(); }, 30).unref();
          break;
        case 'fragment': p.fragmentBytes = 4096; break; // the next 4 KiB each way, one byte per write
        case 'flip': p.flipNext = this.rand() < 0.5 ? 'up' : 'down'; break;
      }
    }
  }

  /** A random fault, weighted towards the ones that force a reconnect quickly. */
  randomFault(): Fault {
    const r = this.rand();
    if (r < 0.3) return 'reset';
    if (r < 0.5) return 'close';
    if (r < 0.7) return 'flip';
    if (r < 0.8) return 'oneway-then-kill';
    if (r < 0.95) return 'fragment';
    return 'blackhole';
  }

  /** Server-side sockets left open by halfOpenServer. */
  readonly halfOpen: Socket[] = [];

  get live(): number {
    return this.#pairs.size;
  }

  close(): void {
    for (const p of this.#pairs) { p.client.destroy(); p.server.destroy(); }
    for (const s of this.halfOpen) s.destroy();
    this.#server.close();
  }
}

/**
 * A position-keyed payload that is cheap to make and check: byte i is block[i mod P] for a prime
 * P, so any duplicate or gap shifts the phase and is caught at its exact offset.
 */
export class Pattern {
  static readonly P = 1_048_573;
  readonly #block: Buffer;

  constructor(seed: number) {
    const r = prng(seed);
    const base = Buffer.allocUnsafe(Pattern.P);
    for (let i = 0; i < base.length; i++) base[i] = Math.floor(r() * 256);
    this.#block = Buffer.concat([base, base]);
  }

  slice(offset: number, length: number): Buffer {
    if (length > Pattern.P) throw new RangeError('slice at most P bytes');
    const at = offset % Pattern.P;
    return this.#block.subarray(at, at + length);
  }

  /** -1 if `chunk` is what belongs at `offset`, else the absolute offset of the first wrong byte. */
  check(offset: number, chunk: Buffer): number {
    for (let done = 0; done < chunk.length;) {
      const n = Math.min(Pattern.P, chunk.length - done);
      const want = this.slice(offset + done, n);
      const got = chunk.subarray(done, done + n);
      if (!want.equals(got)) {
        for (let i = 0; i < n; i++) if (want[i] !== got[i]) return offset + done + i;
      }
      done += n;
    }
    return -1;
  }
}
