/**
 * Relay throughput (issue 19): DoorKeeper's RustDesk-compatible relay (RelayServer, TCP ⇄ TCP after
 * pairing) against a plain Node pipe relay (a `net` server that pairs each two consecutive
 * connections and runs `a.pipe(b); b.pipe(a)`), measured in the same run. Target: ≥ 0.8 × the pipe.
 *
 * Each relay runs in a child process of its own with the same process settings (the ones every
 * DoorKeeper relaying process applies); the load runs here. One stream: one pair, A writes as fast
 * as backpressure allows for `seconds`, B counts what arrives. Eight streams: eight pairs at once.
 * Each figure is the better of `rounds` alternating runs, so a burst of load from elsewhere on the
 * machine does not decide the ratio. CPU seconds per GiB are the relay process's own.
 *
 * Standalone: npm exec --no -- node bench/rendezvous-relay.ts [--seconds N] [--rounds N]
 * Child mode (used by the benchmark itself): node bench/rendezvous-relay.ts --serve dk|plain
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { encodeFrame } from '../src/rendezvous/framing.ts';
import { encodeRendezvous } from '../src/rendezvous/messages.ts';
import { RelayServer } from '../src/rendezvous/relay-server.ts';
import { silentLogger } from '../src/util/log.ts';
import { tuneProcessForRelaying } from '../src/util/process-tuning.ts';
import { connected } from '../src/util/connect.ts';
import { cpuSeconds } from './lib/proc.ts';

type Kind = 'dk' | 'plain';

export interface RelayFigure {
  /** MB/s (10^6 bytes per second) received by the B sides, summed over the streams. */
  mbps: number;
  /** CPU seconds of the relay process per GiB moved. */
  cpuPerGiB: number;
}

export interface RelayBench {
  seconds: number;
  rounds: number;
  oneStream: { dk: RelayFigure; plain: RelayFigure; ratio: number };
  eightStreams: { dk: RelayFigure; plain: RelayFigure; ratio: number };
}

const SELF = fileURLToPath(import.meta.url);
const CHUNK = randomBytes(256 * 1024);

/** The relay side: runs until its parent closes stdin. */
async function serve(kind: Kind): Promise<void> {
  tuneProcessForRelaying();
  let port: number;
  if (kind === 'dk') {
    const relay = await RelayServer.listen({ bind: '127.0.0.1', tcpPort: 0, wsPort: null, key: null, log: silentLogger });
    port = relay.tcpPort;
  } else {
    let waiting: Socket | null = null;
    const server = createServer({ noDelay: true }, (s) => {
      s.on('error', () => s.destroy());
      if (!waiting) {
        waiting = s;
        s.once('close', () => { if (waiting === s) waiting = null; });
        return;
      }
      const a = waiting;
      waiting = null;
      a.pipe(s).pipe(a);
      a.on('close', () => s.destroy());
      s.on('close', () => a.destroy());
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  }
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

async function startRelay(kind: Kind): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [SELF, '--serve', kind], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  for await (const c of child.stdout) {
    out += String(c);
    if (out.includes('\n')) break;
  }
  return { child, port: (JSON.parse(out.split('\n')[0]!) as { port: number }).port };
}

async function dial(port: number): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port, noDelay: true });
  s.on('error', () => undefined);
  return connected(s);
}

/** Opens `streams` pairs through the relay: A then B, one pair at a time (the plain relay pairs by order). */
async function openPairs(kind: Kind, port: number, streams: number): Promise<[Socket, Socket][]> {
  const pairs: [Socket, Socket][] = [];
  for (let i = 0; i < streams; i++) {
    const uuid = `bench-${i}-${Date.now()}`;
    const hello = encodeFrame(encodeRendezvous({ union: { case: 'requestRelay', value: { uuid } } }));
    const a = await dial(port);
    if (kind === 'dk') a.write(hello);
    // The pair is formed once a byte crosses it: B answers A's probe.
    const b = await dial(port);
    if (kind === 'dk') b.write(hello);
    b.once('data', () => b.write('!'));
    a.write('?');
    await once(a, 'data');
    pairs.push([a, b]);
  }
  return pairs;
}

async function measure(kind: Kind, streams: number, seconds: number): Promise<RelayFigure> {
  const { child, port } = await startRelay(kind);
  try {
    const pairs = await openPairs(kind, port, streams);
    let received = 0;
    let stop = false;
    for (const [a, b] of pairs) {
      b.on('data', (c: Buffer) => { received += c.length; });
      const pump = (): void => {
        while (!stop && a.write(CHUNK));
      };
      a.on('drain', pump);
      pump();
    }
    // A moment to reach steady state before counting.
    await new Promise((r) => setTimeout(r, 300));
    const from = received;
    const cpu0 = cpuSeconds([child.pid!]);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const bytes = received - from;
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds([child.pid!]) - cpu0;
    stop = true;
    for (const [a, b] of pairs) {
      a.destroy();
      b.destroy();
    }
    return { mbps: bytes / elapsed / 1e6, cpuPerGiB: bytes > 0 ? cpu / (bytes / 2 ** 30) : Infinity };
  } finally {
    child.stdin!.end();
    await once(child, 'exit');
  }
}

function better(x: RelayFigure | undefined, y: RelayFigure): RelayFigure {
  return !x || y.mbps > x.mbps ? y : x;
}

export async function benchRelay(o: { seconds: number; rounds?: number }): Promise<RelayBench> {
  const rounds = Math.max(1, o.rounds ?? 2);
  const best: Record<string, RelayFigure | undefined> = {};
  for (let r = 0; r < rounds; r++) {
    for (const streams of [1, 8]) {
      // Alternate which relay goes first, so neither always gets the quieter moment.
      const order: Kind[] = r % 2 === 0 ? ['plain', 'dk'] : ['dk', 'plain'];
      for (const kind of order) best[`${kind}${streams}`] = better(best[`${kind}${streams}`], await measure(kind, streams, o.seconds));
    }
  }
  const fig = (streams: number): { dk: RelayFigure; plain: RelayFigure; ratio: number } => {
    const dk = best[`dk${streams}`]!;
    const plain = best[`plain${streams}`]!;
    return { dk, plain, ratio: dk.mbps / plain.mbps };
  };
  return { seconds: o.seconds, rounds, oneStream: fig(1), eightStreams: fig(8) };
}

export function formatRelayBench(b: RelayBench): string {
  const row = (name: string, f: { dk: RelayFigure; plain: RelayFigure; ratio: number }): string =>
    `${name.padEnd(12)} ${f.dk.mbps.toFixed(0).padStart(8)} MB/s ${f.dk.cpuPerGiB.toFixed(2).padStart(6)} s/GiB   ${f.plain.mbps.toFixed(0).padStart(8)} MB/s ${f.plain.cpuPerGiB.toFixed(2).padStart(6)} s/GiB   ${f.ratio.toFixed(2)}×${f.ratio >= 0.8 ? '' : '  (below the 0.8× target)'}`;
  return [
    `relay throughput, loopback, best of ${b.rounds} × ${b.seconds} s (MB = 10^6 bytes; CPU of the relay process)`,
    `${''.padEnd(12)} ${'DoorKeeper relay'.padStart(26)}   ${'plain Node pipe relay'.padStart(26)}   ratio`,
    row('1 stream', b.oneStream),
    row('8 streams', b.eightStreams),
  ].join('\n');
}

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};

if (process.argv[1] === SELF) {
  const kind = arg('--serve');
  if (kind === 'dk' || kind === 'plain') {
    await serve(kind);
  } else {
    const b = await benchRelay({ seconds: Number(arg('--seconds') ?? 3), rounds: Number(arg('--rounds') ?? 2) });
    process.stdout.write(`${formatRelayBench(b)}\n`);
    process.stdout.write(`${JSON.stringify(b)}\n`);
  }
}
