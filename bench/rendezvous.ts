/**
 * The rendezvous section of `npm run bench` (issue 19), also runnable alone:
 *   node bench/rendezvous.ts [--peers N] [--seconds S] [--out DIR]
 * The server runs alone in a child process (bench/lib/rdv-child.ts), on one core; this process is
 * the load: RustDesk clients played with the project's codec over loopback.
 *   - RSS per registered peer: RegisterPk for N ids (100,000), the child's RSS after a full GC
 *     before and after, divided by N. Target ≤ 1 KiB.
 *   - UDP RegisterPeer handled per second, and p99 latency: 8 sockets, each keeping 64 requests
 *     in flight, for S seconds, on known (registered) ids. Target ≥ 50,000/s on one core. Then
 *     the latency at light load: one request in flight per socket.
 *   - Punch round trip: A sends PunchHoleRequest on a fresh TCP connection; B (registered over UDP)
 *     gets PunchHole, opens a new TCP connection and sends PunchHoleSent; A gets its
 *     PunchHoleResponse. p50 / p99 over sequential round trips. Target ≤ 1 ms p50.
 *   - The relay's figures come from bench/rendezvous-relay.ts in the same run.
 * It asserts nothing; it prints and writes rendezvous-results.json.
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NatType } from '../src/rendezvous/gen/rendezvous_pb.ts';
import { encodeRendezvous } from '../src/rendezvous/messages.ts';
import { TcpPeer, UdpPeer } from '../test/helpers/rustdesk.ts';
import { cpuSeconds } from './lib/proc.ts';
import { restartPlan } from '../src/util/process-tuning.ts';
import { benchRelay, formatRelayBench } from './rendezvous-relay.ts';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const PEERS = Number(arg('--peers') ?? 100_000);
const SECONDS = Number(arg('--seconds') ?? 5);
const PUNCHES = Number(arg('--punches') ?? 2000);
const OUT = arg('--out');
const CHILD = fileURLToPath(new URL('./lib/rdv-child.ts', import.meta.url));
const log = (s: string): void => void process.stderr.write(`${s}\n`);

interface ChildInfo { ports: { port: number; udp_port: number; nat_port: number }; dir: string }

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

async function rss(child: ReturnType<typeof fork>): Promise<{ rss: number; heap: number; heapTotal: number; external: number; peers: number }> {
  child.send('rss');
  const [m] = await once(child, 'message');
  return m as { rss: number; heap: number; heapTotal: number; external: number; peers: number };
}

/** RegisterPk for `n` ids from 8 sockets, 64 in flight each; returns how many were answered OK. */
async function registerMany(port: number, n: number): Promise<number> {
  const socks = await Promise.all(Array.from({ length: 8 }, (_, i) => UdpPeer.open(`127.0.0.${20 + i}`)));
  let next = 0;
  let ok = 0;
  await Promise.all(socks.map(async (s) => {
    const inflight = 64;
    const send = (): boolean => {
      if (next >= n) return false;
      const id = `bench-${String(next++).padStart(7, '0')}`;
      s.send({ union: { case: 'registerPk', value: { id, uuid: Buffer.from(id), pk: Buffer.alloc(32, next & 0xff) } } }, port);
      return true;
    };
    let outstanding = 0;
    for (let i = 0; i < inflight && send(); i++) outstanding++;
    while (outstanding > 0) {
      const r = await s.nextBytes(2000);
      if (r === null) break; // lost: the ids left are still sent by the others
      outstanding--;
      if (r.toString('hex') === '820100') ok++;
      if (send()) outstanding++;
    }
  }));
  for (const s of socks) s.close();
  return ok;
}

/**
 * RegisterPeer on known ids for `seconds`: answered per second and latency percentiles (µs).
 * The load is lean on purpose (pre-encoded datagrams, callbacks, no promises per message), so that
 * the figure is the server's: 8 sockets, 64 requests in flight each, answers matched in order.
 */
async function registerPeerLoad(port: number, ids: number, seconds: number, serverPid: number, inflight = 64): Promise<{ perSecond: number; p50: number; p99: number; lost: number; cpuUs: number }> {
  const pool = Array.from({ length: Math.min(ids, 20_000) }, (_, i) =>
    Buffer.from(encodeRendezvous({ union: { case: 'registerPeer', value: { id: `bench-${String(i).padStart(7, '0')}`, serial: 0 } } })));
  const socks = await Promise.all(Array.from({ length: 8 }, (_, i) => UdpPeer.open(`127.0.0.${20 + i}`)));
  const lat: number[] = [];
  let answered = 0;
  let lost = 0;
  let measuring = true;
  for (const [si, s] of socks.entries()) {
    const sent: number[] = [];
    let k = si;
    const send = (): void => {
      s.socket.send(pool[k % pool.length]!, port, '127.0.0.1');
      k += 8;
      sent.push(performance.now());
    };
    s.socket.removeAllListeners('message');
    let last = performance.now();
    s.socket.on('message', () => {
      if (!measuring) return;
      const now = performance.now();
      last = now;
      const t0 = sent.shift();
      if (t0 !== undefined && (inflight === 1 || (answered & 7) === 0)) lat.push((now - t0) * 1000);
      answered++;
      send();
    });
    // A window that lost datagrams is refilled after 200 ms of silence.
    const refill = setInterval(() => {
      if (measuring && performance.now() - last > 200) {
        lost += sent.length;
        sent.length = 0;
        last = performance.now();
        for (let i = 0; i < inflight; i++) send();
      }
    }, 100);
    s.socket.once('close', () => clearInterval(refill));
    for (let i = 0; i < inflight; i++) send();
  }
  const t0 = performance.now();
  const a0 = answered;
  const c0 = cpuSeconds([serverPid]);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const done = answered - a0;
  const cpu = cpuSeconds([serverPid]) - c0;
  const elapsed = (performance.now() - t0) / 1000;
  measuring = false;
  for (const s of socks) s.close();
  return { perSecond: done / elapsed, p50: pct(lat, 50), p99: pct(lat, 99), lost, cpuUs: (cpu * 1e6) / done };
}

/** Sequential punch round trips (µs) between A (127.0.0.2, TCP) and B (127.0.0.3, UDP-registered). */
async function punches(port: number, n: number): Promise<{ p50: number; p99: number; n: number }> {
  const b = await UdpPeer.open('127.0.0.3');
  const id = 'bench-punch-b';
  b.send({ union: { case: 'registerPk', value: { id, uuid: Buffer.from('u'), pk: Buffer.alloc(32, 5) } } }, port);
  await b.next();
  const key = readFileSync(join(keyDir, 'id_ed25519.pub'), 'utf8');
  const lat: number[] = [];
  let lastReg = 0;
  for (let i = 0; i < n; i++) {
    if (performance.now() - lastReg > 5000) {
      b.send({ union: { case: 'registerPeer', value: { id, serial: 0 } } }, port);
      await b.next();
      lastReg = performance.now();
    }
    // A new connection per punch, as a client makes (at most 3 requests on one; the server allows 16).
    const a = await TcpPeer.connect(port, { localAddress: '127.0.0.2' });
    const t0 = performance.now();
    a.send({ union: { case: 'punchHoleRequest', value: { id, natType: NatType.ASYMMETRIC, licenceKey: key, version: '1.4.9' } } });
    const ph = await b.next();
    if (ph?.union.case !== 'punchHole') throw new Error(`B got ${ph?.union.case}`);
    const bt = await TcpPeer.connect(port, { localAddress: '127.0.0.3' });
    bt.send({ union: { case: 'punchHoleSent', value: { socketAddr: ph.union.value.socketAddr, id, natType: NatType.ASYMMETRIC, version: '1.4.9' } } });
    const r = await a.next();
    if (r?.union.case !== 'punchHoleResponse') throw new Error(`A got ${r?.union.case}`);
    lat.push((performance.now() - t0) * 1000);
    bt.close();
    a.close();
  }
  b.close();
  return { p50: pct(lat, 50), p99: pct(lat, 99), n };
}

let keyDir = '';

export async function benchRendezvous(o: { peers: number; seconds: number; punches: number }): Promise<Record<string, number>> {
  // The child runs with the gateway's own process settings (src/util/process-tuning.ts): what a user's gateway is.
  const plan = restartPlan([], process.env);
  const child = fork(CHILD, [], {
    execArgv: ['--expose-gc', ...(plan?.execArgv ?? [])], env: { ...process.env, ...(plan?.env ?? {}) }, stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  try {
    const rl = createInterface({ input: child.stdout! });
    const [line] = await once(rl, 'line') as [string];
    const info = JSON.parse(line) as ChildInfo;
    keyDir = info.dir;
    const port = info.ports.port;
    // Warm up the paths, then the memory baseline.
    await registerMany(port, 2000);
    const before = await rss(child);
    log(`rendezvous: registering ${o.peers} peers…`);
    const t0 = performance.now();
    const ok = await registerMany(port, o.peers + 2000);
    const regPkPerSecond = ok / ((performance.now() - t0) / 1000);
    const after = await rss(child);
    const perPeer = (after.rss - before.rss) / (after.peers - before.peers);
    const heapPerPeer = (after.heap - before.heap) / (after.peers - before.peers);
    log(`rendezvous: before ${JSON.stringify(before)} after ${JSON.stringify(after)}`);
    log(`rendezvous: ${after.peers} peers in memory; RSS per peer ${perPeer.toFixed(0)} B (heap ${heapPerPeer.toFixed(0)} B); RegisterPk ${regPkPerSecond.toFixed(0)}/s (SQLite write each)`);
    const reg = await registerPeerLoad(port, o.peers, o.seconds, child.pid!);
    log(`rendezvous: UDP RegisterPeer ${reg.perSecond.toFixed(0)}/s using ${reg.cpuUs.toFixed(1)} µs of server CPU each (${(1e6 / reg.cpuUs).toFixed(0)}/s per CPU-second), latency p50 ${reg.p50.toFixed(0)} µs p99 ${reg.p99.toFixed(0)} µs (lost ${reg.lost})`);
    // The same at light load (one request in flight per socket): the latency of a request, not of a queue.
    const light = await registerPeerLoad(port, o.peers, Math.min(o.seconds, 3), child.pid!, 1);
    log(`rendezvous: UDP RegisterPeer at light load (8 in flight): ${light.perSecond.toFixed(0)}/s, latency p50 ${light.p50.toFixed(0)} µs p99 ${light.p99.toFixed(0)} µs`);
    const punch = await punches(port, o.punches);
    log(`rendezvous: punch round trip p50 ${punch.p50.toFixed(0)} µs p99 ${punch.p99.toFixed(0)} µs over ${punch.n}`);
    return {
      peers: after.peers, rss_per_peer_bytes: Math.round(perPeer), heap_per_peer_bytes: Math.round(heapPerPeer), register_pk_per_second: Math.round(regPkPerSecond),
      register_peer_per_second: Math.round(reg.perSecond), register_peer_p50_us: Math.round(reg.p50), register_peer_p99_us: Math.round(reg.p99), register_peer_lost: reg.lost, register_peer_cpu_us: Number(reg.cpuUs.toFixed(2)), register_peer_per_cpu_second: Math.round(1e6 / reg.cpuUs),
      register_peer_light_p50_us: Math.round(light.p50), register_peer_light_p99_us: Math.round(light.p99), register_peer_light_per_second: Math.round(light.perSecond),
      punch_p50_us: Math.round(punch.p50), punch_p99_us: Math.round(punch.p99), punches: punch.n,
    };
  } finally {
    child.kill('SIGKILL');
  }
}

/** The whole section: rendezvous figures, then the relay's; prints both and returns them for the JSON. */
export async function rendezvousSection(o: { peers: number; seconds: number; punches: number; out?: string }): Promise<void> {
  const r = await benchRendezvous(o);
  const relay = await benchRelay({ seconds: Math.max(2, Math.min(o.seconds, 4)), rounds: 2 });
  const targets = [
    `UDP RegisterPeer/s        ${r.register_peer_per_second}  (target ≥ 50000 on one core)`,
    `RegisterPeer per CPU-s    ${r.register_peer_per_cpu_second}  (server CPU ${r.register_peer_cpu_us} µs each: one core's capacity)`,
    `RegisterPeer p99          ${r.register_peer_p99_us} µs with 512 in flight (a queue); ${r.register_peer_light_p99_us} µs with 8 (p50 ${r.register_peer_light_p50_us} µs)`,
    `RSS per registered peer   ${r.rss_per_peer_bytes} B at ${r.peers} peers (target ≤ 1024 B)`,
    `punch round trip          p50 ${r.punch_p50_us} µs, p99 ${r.punch_p99_us} µs (target p50 ≤ 1000 µs)`,
  ];
  process.stdout.write(`\nRendezvous (one server process, loopback)\n${targets.map((t) => `  ${t}`).join('\n')}\n\n${formatRelayBench(relay)}\n`);
  if (o.out) writeFileSync(join(o.out, 'rendezvous-results.json'), JSON.stringify({ date: new Date().toISOString(), node: process.version, rendezvous: r, relay }, null, 2) + '\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await rendezvousSection({ peers: PEERS, seconds: SECONDS, punches: PUNCHES, ...(OUT ? { out: OUT } : {}) });
}
