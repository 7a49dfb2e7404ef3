/**
 * dk connect's three paths side by side in the NAT lab (issue 20; docs/p2p.md §9), as root:
 *   node bench/p2p-path.ts [--rounds N] [--mib N] [--pings N] [--starts N] [--out DIR]
 * (also the `p2p` section of `npm run bench`; `npm run bench -- --only p2p` runs it alone).
 *
 * One lab, cone NAT on both sides (test/helpers/natlab.ts), with the real processes: two
 * `dk gateway`s on the public segment (one with p2p: auto, the default; one with DK_P2P=off), a
 * `dk agent` in LAN B for each, one target program in LAN B (bench/lib/lab-ends.ts), and in LAN A
 * three `dk connect -L` that stay up for the whole run:
 *   direct         gateway p2p auto, dk connect --p2p auto: end to end, moved onto a punched TCP
 *                  connection between the NATs (the bench waits for its path=direct line)
 *   relayed        the same gateway, dk connect --p2p off: end to end, through the gateway's relay
 *                  (the gateway pairs the two raw streams and sees only ciphertext)
 *   gateway        the DK_P2P=off gateway: the older path, the gateway decrypts the client's link
 *                  and re-encrypts onto the agent's
 * and, as the latency and throughput baseline, no dk at all: the same client program straight to
 * the same target through a port forward on NAT B (DNAT of the router's public port 9000 to the
 * target), i.e. over the same routers and links the direct path crosses (LAN A → NAT A → public
 * segment → NAT B → LAN B), minus dk connect and the agent.
 *
 * Every round measures, for each path in turn: one stream up (N MiB, default 256, client → target),
 * then one stream down (the same the other way): one direction at a time, MB/s = 10^6 bytes per
 * second, timed in the client program from its first byte to the target's 1-byte receipt (up) or
 * to the last byte (down); CPU seconds of dk connect, the gateway and the agent during both; then
 * 2,000 1-byte round trips (after 100 for warm-up) on one connection, p50 and p99. Figures are
 * the medians over the rounds. The public segment counts what it forwards between the two NATs,
 * so each transfer's bytes on the direct path are measured, not taken from dk connect's word.
 * Then the time to the direct path, over S fresh starts each (default 10): dk connect -L (the link
 * opens at start, so after_ms counts from start) and dk connect --stdio (one session at once, so
 * after_ms counts from the first local connection); also the wall time from spawning the process
 * to the path=direct line, which adds Node's start-up.
 * Prints a table and the two ratios of issue 20 with their targets; writes p2p-results.json.
 * It asserts nothing.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN } from '../test/helpers/cli.ts';
import { createLab, labUnavailable, LAB_ADDR, type Lab, type LabProcess } from '../test/helpers/natlab.ts';
import { bytesBetweenNats, countBetweenNats } from '../test/helpers/nat-counters.ts';
import { tree } from './lib/proc.ts';

const ENDS = fileURLToPath(new URL('./lib/lab-ends.ts', import.meta.url));
const ADMIN = 'admin-token-for-the-p2p-bench-0123456789';
const KEY = 'backend-key-for-the-p2p-bench';
const TARGET_PORT = 9000;
/** NAT B's public port forwarded to the target (the baseline's way in). */
const FORWARD_PORT = 9000;
const GATEWAYS = { auto: { serv: 35357, mgmt: 3535 }, off: { serv: 40357, mgmt: 3536 } } as const;
const PORTS = { direct: 2222, relayed: 2223, gateway: 2224, start: 2225 } as const;
const MiB = 1024 * 1024;
/** The longest a client program may take (256 MiB at 1 MB/s would be far beyond any path here). */
const CLIENT_MS = 300_000;
const log = (s: string): void => void process.stderr.write(`${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface P2pPathOptions {
  rounds: number;
  /** MiB per direction per transfer. */
  mib: number;
  pings: number;
  starts: number;
  /** Directory for p2p-results.json (none: not written). */
  out?: string;
}

type PathKey = 'direct' | 'relayed' | 'gateway';
const PATHS: PathKey[] = ['direct', 'relayed', 'gateway'];
const LABEL: Record<PathKey | 'baseline', string> = {
  direct: 'direct (end to end, punched TCP)',
  relayed: 'relayed end to end (--p2p off)',
  gateway: 'through the gateway (DK_P2P=off)',
  baseline: 'no dk: port forward on NAT B',
};

/** User and system CPU seconds of the processes (/proc/PID/stat utime, stime; USER_HZ 100). */
function cpuSplit(pids: number[]): { user: number; sys: number } {
  let user = 0;
  let sys = 0;
  for (const p of pids) {
    try {
      const st = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      user += Number(f[11]) / 100;
      sys += Number(f[12]) / 100;
    } catch { /* gone */ }
  }
  return { user, sys };
}

interface Round {
  upMBps: number;
  downMBps: number;
  /**
   * CPU seconds per GiB moved (up + down), by process, and the share of them spent in the kernel
   * (in the lab, a process sending on a veth also runs the routers' forwarding and NAT for its packets).
   */
  cpuPerGiB: { client: number; gateway: number; agent: number; kernelShare: number };
  /** Bytes the public segment forwarded between the two NATs during the up + down transfers. */
  directBytes: number;
  p50us: number;
  p99us: number;
}

interface StartFigure { wallMs: number; afterMs: number; ms: number; attempts: number }

async function until(cond: () => boolean, ms: number, what: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what()}`);
    await sleep(50);
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const round1 = (x: number): number => Math.round(x * 10) / 10;
const round2 = (x: number): number => Math.round(x * 100) / 100;

/** Path lines dk connect printed on stderr, without the "dk connect: " prefix. */
const pathLines = (p: LabProcess): string[] => p.stderr().split('\n').filter((l) => l.startsWith('dk connect: path=')).map((l) => l.slice('dk connect: '.length));

/** Stops a lab process the way a user does (SIGTERM: dk connect closes its links), SIGKILL after 5 s. */
async function stop(p: LabProcess): Promise<void> {
  p.child.kill('SIGTERM');
  const exited = await Promise.race([p.exited.then(() => true), sleep(5000).then(() => false)]);
  if (!exited) p.kill();
  await p.exited;
}

interface Stack {
  lab: Lab;
  dir: string;
  tokenFile: string;
  keys: Record<'auto' | 'off', string>;
  gateways: Record<'auto' | 'off', LabProcess>;
  agents: Record<'auto' | 'off', LabProcess>;
}

async function buildStack(): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'dk-p2p-bench-'));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, ADMIN, { mode: 0o600 });
  const lab = await createLab({ natA: 'cone', natB: 'cone' });
  try {
    // Counters (no verdict) for what the public segment forwards between the two NATs: the direct path.
    await countBetweenNats(lab);
    // The baseline's way to the target: NAT B's public port forwarded to it (cone routers forward everything).
    await lab.exec('rb', 'iptables', ['-t', 'nat', '-A', 'PREROUTING', '-i', 'wan', '-p', 'tcp', '--dport', String(FORWARD_PORT), '-j', 'DNAT', '--to-destination', `${LAB_ADDR.target}:${TARGET_PORT}`]);
    const keys = {} as Record<'auto' | 'off', string>;
    const gateways = {} as Record<'auto' | 'off', LabProcess>;
    const agents = {} as Record<'auto' | 'off', LabProcess>;
    for (const mode of ['auto', 'off'] as const) {
      const data = join(dir, `gw-${mode}`);
      keys[mode] = execFileSync(process.execPath, [BIN, 'pubkey', '--data-dir', data], { encoding: 'utf8' }).trim().split('\n').at(-1)!.trim();
      const g = GATEWAYS[mode];
      const gw = lab.run('pub', BIN, [
        'gateway', '--bind', LAB_ADDR.rendezvous, '--serv-port', String(g.serv), '--mgmt-port', String(g.mgmt), '--data-dir', data,
        '--admin-token-file', tokenFile, '--backend', `home=${KEY}`, '--log-format', 'json',
      ], { DK_P2P: mode });
      gateways[mode] = gw;
    }
    for (const mode of ['auto', 'off'] as const) {
      const gw = gateways[mode];
      await until(() => gw.stderr().includes('gateway listening for agents'), 30_000, () => `the ${mode} gateway (stderr: ${gw.stderr().slice(-1500)})`);
      const agent = lab.run('b', BIN, [
        'agent', '--gateway', `${LAB_ADDR.rendezvous}:${GATEWAYS[mode].serv}`, '--name', 'home', '--key', KEY, '--gateway-key', keys[mode],
        '--allow', '198.19.2.0/24', '--data-dir', join(dir, `agent-${mode}`), '--log-format', 'json',
      ]);
      await until(() => agent.stderr().includes('connected to gateway'), 30_000, () => `the ${mode} agent (stderr: ${agent.stderr().slice(-1500)})`);
      agents[mode] = agent;
    }
    return { lab, dir, tokenFile, keys, gateways, agents };
  } catch (err) {
    await lab.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** `dk connect` in LAN A to the target, through the given gateway; resolves once it listens (-L) or at once (--stdio). */
async function dkConnect(s: Stack, gw: 'auto' | 'off', local: { port: number } | 'stdio', extra: string[] = []): Promise<LabProcess> {
  const args = [
    'connect', 'home', String(TARGET_PORT), LAB_ADDR.target, ...(local === 'stdio' ? ['--stdio'] : ['-L', `127.0.0.1:${local.port}`]),
    '--gateway', `${LAB_ADDR.rendezvous}:${GATEWAYS[gw].serv}`, '--gateway-key', s.keys[gw], '--token-file', s.tokenFile, '--log-format', 'json', ...extra,
  ];
  // Under --stdio, dk connect prints path lines only at DK_LOG_LEVEL=info (stderr is ssh's terminal).
  const p = s.lab.run('a', BIN, args, local === 'stdio' ? { DK_LOG_LEVEL: 'info' } : {});
  if (local !== 'stdio') {
    let stdout = '';
    p.child.stdout!.on('data', (c: Buffer) => { stdout += c.toString(); });
    await until(() => stdout.includes(`127.0.0.1:${local.port}`) || p.child.exitCode !== null, 30_000, () => `dk connect to listen (stderr: ${p.stderr().slice(-1500)})`);
    if (p.child.exitCode !== null) throw new Error(`dk connect exited (${p.child.exitCode}): ${p.stderr().slice(-1500)}`);
  }
  return p;
}

async function waitLine(p: LabProcess, re: RegExp, ms: number): Promise<string> {
  await until(() => pathLines(p).some((l) => re.test(l)) || p.child.exitCode !== null, ms, () => `a path line matching ${re} (got: ${pathLines(p).join(' | ')}; stderr: ${p.stderr().slice(-1000)})`);
  const line = pathLines(p).find((l) => re.test(l));
  if (!line) throw new Error(`dk connect exited (${p.child.exitCode}) before a path line matching ${re}: ${p.stderr().slice(-1500)}`);
  return line;
}

/** Runs the client program in LAN A to a host:port; returns its result line. */
async function client(lab: Lab, mode: 'up' | 'down' | 'ping', host: string, port: number, o: { bytes?: number; rounds?: number }): Promise<Record<string, unknown>> {
  const p = lab.run('a', ENDS, [mode, '--host', host, '--port', String(port), '--bytes', String(o.bytes ?? 0), '--rounds', String(o.rounds ?? 0)]);
  const done = await Promise.race([p.exited.then(() => true), sleep(CLIENT_MS).then(() => false)]);
  if (!done) {
    p.kill();
    await p.exited;
    throw new Error(`${mode} to ${host}:${port}: no result within ${CLIENT_MS / 1000} s`);
  }
  const r = p.messages.find((m) => m.type === 'result');
  if (!r) throw new Error(`${mode} to ${host}:${port}: ${JSON.stringify(p.messages.slice(-3))} ${p.stderr().slice(-1000)}`);
  return r;
}

async function measure(s: Stack, host: string, port: number, bytes: number, pings: number, pids: { client: number[]; gateway: number[]; agent: number[] }): Promise<Round> {
  const cpu = (): Record<'client' | 'gateway' | 'agent', { user: number; sys: number }> =>
    ({ client: cpuSplit(tree(pids.client)), gateway: cpuSplit(tree(pids.gateway)), agent: cpuSplit(tree(pids.agent)) });
  const c0 = cpu();
  const d0 = await bytesBetweenNats(s.lab);
  const up = await client(s.lab, 'up', host, port, { bytes });
  const down = await client(s.lab, 'down', host, port, { bytes });
  const d1 = await bytesBetweenNats(s.lab);
  const c1 = cpu();
  const gib = (2 * bytes) / (1024 * MiB);
  const used = (k: 'client' | 'gateway' | 'agent'): { user: number; sys: number } => ({ user: c1[k].user - c0[k].user, sys: c1[k].sys - c0[k].sys });
  const perGiB = { client: 0, gateway: 0, agent: 0 };
  let user = 0;
  let sys = 0;
  for (const k of ['client', 'gateway', 'agent'] as const) {
    const u = used(k);
    perGiB[k] = round2((u.user + u.sys) / gib);
    user += u.user;
    sys += u.sys;
  }
  const ping = await client(s.lab, 'ping', host, port, { rounds: pings });
  const us = ping.us as number[];
  return {
    upMBps: round1(bytes / 1e6 / ((up.ms as number) / 1000)),
    downMBps: round1(bytes / 1e6 / ((down.ms as number) / 1000)),
    cpuPerGiB: { ...perGiB, kernelShare: round2(sys / Math.max(1e-9, user + sys)) },
    directBytes: d1 - d0,
    p50us: pct(us, 50),
    p99us: pct(us, 99),
  };
}

/** S fresh starts of dk connect (-L, or --stdio): the time to its path=direct line. */
async function timeToDirect(s: Stack, kind: 'listen' | 'stdio', n: number): Promise<{ figures: StartFigure[]; relayedOnly: string[] }> {
  const figures: StartFigure[] = [];
  const relayedOnly: string[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const p = await dkConnect(s, 'auto', kind === 'stdio' ? 'stdio' : { port: PORTS.start });
    try {
      const line = await waitLine(p, /^path=(direct |relay reason="no direct path)/, 30_000);
      const wallMs = performance.now() - t0;
      if (!line.startsWith('path=direct')) {
        relayedOnly.push(line);
        continue;
      }
      const num = (k: string): number => Number(new RegExp(`${k}=(\\d+)`).exec(line)?.[1] ?? NaN);
      figures.push({ wallMs: Math.round(wallMs), afterMs: num('after_ms'), ms: num('ms'), attempts: num('attempts') });
    } finally {
      await stop(p);
    }
  }
  return { figures, relayedOnly };
}

export interface P2pPathResults {
  date: string;
  node: string;
  cpus: number;
  cpuModel: string;
  nat: string;
  options: Omit<P2pPathOptions, 'out'>;
  method: Record<string, string>;
  pathLines: Record<PathKey, string[]>;
  median: Record<PathKey | 'baseline', Omit<Round, 'directBytes' | 'cpuPerGiB'> & { cpuPerGiB?: Round['cpuPerGiB'] & { total: number }; directMiB: number }>;
  rounds: Record<PathKey | 'baseline', Round[]>;
  ratios: { directOverRelayed: { up: number; down: number; target: number; met: boolean }; directOverGateway: { up: number; down: number; target: number; met: boolean } };
  addedLatency: Record<PathKey, { p50us: number; p99us: number }>;
  timeToDirect: Record<'listen' | 'stdio', { starts: number; direct: number; wallMs: { median: number; max: number }; afterMs: { median: number; max: number }; punchMs: { median: number; max: number }; relayedOnly: string[] }>;
}

/** The section: builds the lab, measures, prints, writes p2p-results.json; null (having said why) when the lab cannot run here. */
export async function p2pPathSection(o: P2pPathOptions): Promise<P2pPathResults | null> {
  const why = await labUnavailable();
  if (why !== undefined) {
    log(`p2p: skipped (${why})`);
    process.stdout.write(`\ndk connect direct vs relayed vs through the gateway: not measured here: ${why}\n`);
    return null;
  }
  log(`p2p: building the NAT lab (cone/cone) with two gateways, two agents and a target`);
  const s = await buildStack();
  const conns: LabProcess[] = [];
  try {
    const target = s.lab.run('t', ENDS, ['serve', '--host', LAB_ADDR.target, '--port', String(TARGET_PORT)]);
    await target.next('listening');
    const c: Record<PathKey, LabProcess> = {
      direct: await dkConnect(s, 'auto', { port: PORTS.direct }),
      relayed: await dkConnect(s, 'auto', { port: PORTS.relayed }, ['--p2p', 'off']),
      gateway: await dkConnect(s, 'off', { port: PORTS.gateway }),
    };
    conns.push(...Object.values(c));
    await waitLine(c.direct, /^path=direct /, 30_000);
    await waitLine(c.relayed, /^path=relay reason="direct paths are off/, 30_000);
    await waitLine(c.gateway, /^path=gateway /, 30_000);
    const linesAtStart = Object.fromEntries(PATHS.map((k) => [k, pathLines(c[k]).length])) as Record<PathKey, number>;
    const pid = (p: LabProcess): number[] => [p.child.pid!];
    const where: Record<PathKey | 'baseline', { host: string; port: number; pids: { client: number[]; gateway: number[]; agent: number[] } }> = {
      direct: { host: '127.0.0.1', port: PORTS.direct, pids: { client: pid(c.direct), gateway: pid(s.gateways.auto), agent: pid(s.agents.auto) } },
      relayed: { host: '127.0.0.1', port: PORTS.relayed, pids: { client: pid(c.relayed), gateway: pid(s.gateways.auto), agent: pid(s.agents.auto) } },
      gateway: { host: '127.0.0.1', port: PORTS.gateway, pids: { client: pid(c.gateway), gateway: pid(s.gateways.off), agent: pid(s.agents.off) } },
      baseline: { host: LAB_ADDR.wanB, port: FORWARD_PORT, pids: { client: [], gateway: [], agent: [] } },
    };
    const bytes = o.mib * MiB;
    const rounds: Record<PathKey | 'baseline', Round[]> = { direct: [], relayed: [], gateway: [], baseline: [] };
    for (let r = 1; r <= o.rounds; r++) {
      for (const k of [...PATHS, 'baseline'] as const) {
        log(`p2p: round ${r} of ${o.rounds}: ${LABEL[k]}`);
        const m = await measure(s, where[k].host, where[k].port, bytes, o.pings, where[k].pids);
        rounds[k].push(m);
        log(`p2p:   up ${m.upMBps} MB/s, down ${m.downMBps} MB/s, ${(m.directBytes / MiB).toFixed(0)} MiB between the NATs, RTT p50 ${m.p50us} µs p99 ${m.p99us} µs`);
      }
    }
    // Each dk connect stayed on its path: no path line since the start of the rounds.
    const moved = PATHS.filter((k) => pathLines(c[k]).length !== linesAtStart[k]);
    if (moved.length > 0) log(`p2p: WARNING: the path changed during the rounds: ${moved.map((k) => `${k}: ${pathLines(c[k]).join(' | ')}`).join('; ')}`);
    const lines = Object.fromEntries(PATHS.map((k) => [k, pathLines(c[k])])) as Record<PathKey, string[]>;
    for (const p of conns.splice(0)) await stop(p);

    log(`p2p: time to the direct path: ${o.starts} starts of dk connect -L, then ${o.starts} of dk connect --stdio`);
    const ttd = { listen: await timeToDirect(s, 'listen', o.starts), stdio: await timeToDirect(s, 'stdio', o.starts) };

    const med = (k: PathKey | 'baseline'): P2pPathResults['median'][PathKey] => {
      const rs = rounds[k];
      const cpu = k === 'baseline' ? undefined : {
        client: median(rs.map((x) => x.cpuPerGiB.client)), gateway: median(rs.map((x) => x.cpuPerGiB.gateway)), agent: median(rs.map((x) => x.cpuPerGiB.agent)),
        kernelShare: median(rs.map((x) => x.cpuPerGiB.kernelShare)),
        total: round2(median(rs.map((x) => x.cpuPerGiB.client + x.cpuPerGiB.gateway + x.cpuPerGiB.agent))),
      };
      return {
        upMBps: median(rs.map((x) => x.upMBps)), downMBps: median(rs.map((x) => x.downMBps)),
        p50us: median(rs.map((x) => x.p50us)), p99us: median(rs.map((x) => x.p99us)),
        directMiB: Math.round(median(rs.map((x) => x.directBytes)) / MiB), ...(cpu ? { cpuPerGiB: cpu } : {}),
      };
    };
    const m = { direct: med('direct'), relayed: med('relayed'), gateway: med('gateway'), baseline: med('baseline') };
    const ratio = (a: number, b: number): number => round2(a / b);
    const ratioOf = (other: PathKey, target: number): { up: number; down: number; target: number; met: boolean } => {
      const up = ratio(m.direct.upMBps, m[other].upMBps);
      const down = ratio(m.direct.downMBps, m[other].downMBps);
      return { up, down, target, met: up >= target && down >= target };
    };
    const startFig = (x: { figures: StartFigure[]; relayedOnly: string[] }): P2pPathResults['timeToDirect']['listen'] => {
      const f = x.figures;
      const mm = (xs: number[]): { median: number; max: number } => ({ median: median(xs), max: xs.length ? Math.max(...xs) : NaN });
      return { starts: o.starts, direct: f.length, wallMs: mm(f.map((y) => y.wallMs)), afterMs: mm(f.map((y) => y.afterMs)), punchMs: mm(f.map((y) => y.ms)), relayedOnly: x.relayedOnly };
    };
    const results: P2pPathResults = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      nat: 'cone/cone',
      options: { rounds: o.rounds, mib: o.mib, pings: o.pings, starts: o.starts },
      method: {
        throughput: `one stream, ${o.mib} MiB up (client → target), then ${o.mib} MiB down; MB/s = 10^6 B/s, timed in the client from its first byte to the target's receipt (up) or the last byte (down); median of ${o.rounds} rounds`,
        latency: `${o.pings} 1-byte round trips on one connection after 100 for warm-up; p50/p99 per round, median of the rounds; added = path minus the baseline`,
        baseline: `no dk: the same client program in LAN A straight to the same target, through a port forward (DNAT) of NAT B's public port ${FORWARD_PORT}: the routers and links the direct path crosses, without dk connect and the agent`,
        cpu: 'CPU seconds (user + system, /proc) of dk connect, the gateway and the agent during the up and down transfers, per GiB moved; kernel: the share of them that is system time (in the lab a process that sends on a veth also runs the forwarding and NAT of the namespaces its packets cross)',
        timeToDirect: `${o.starts} fresh starts each; -L: after_ms counts from dk connect's first link request, made at start; --stdio: after_ms counts from the stdio session, the first local connection; wall: from spawning the process to the path=direct line on stderr`,
        machine: `${cpus().length} cores shared by every process of the lab (and by whatever else runs on the machine): the relayed path adds a process that copies every byte (the gateway's relay), the gateway path adds a decryption and an encryption of every byte`,
      },
      pathLines: lines,
      median: m,
      rounds,
      ratios: { directOverRelayed: ratioOf('relayed', 1.5), directOverGateway: ratioOf('gateway', 0.8) },
      addedLatency: Object.fromEntries(PATHS.map((k) => [k, { p50us: m[k].p50us - m.baseline.p50us, p99us: m[k].p99us - m.baseline.p99us }])) as Record<PathKey, { p50us: number; p99us: number }>,
      timeToDirect: { listen: startFig(ttd.listen), stdio: startFig(ttd.stdio) },
    };
    process.stdout.write(`\n${formatResults(results)}\n`);
    if (o.out) {
      mkdirSync(o.out, { recursive: true });
      writeFileSync(join(o.out, 'p2p-results.json'), JSON.stringify(results, null, 2) + '\n');
    }
    return results;
  } finally {
    for (const p of conns) await stop(p).catch(() => undefined);
    await s.lab.close();
    rmSync(s.dir, { recursive: true, force: true });
  }
}

export function formatResults(r: P2pPathResults): string {
  const pad = (x: string, n: number): string => x.padEnd(n);
  const num = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? '—' : String(x));
  const rows = (['direct', 'relayed', 'gateway', 'baseline'] as const).map((k) => {
    const x = r.median[k];
    const cpu = x.cpuPerGiB ? `${x.cpuPerGiB.total} (${x.cpuPerGiB.client}+${x.cpuPerGiB.gateway}+${x.cpuPerGiB.agent}) ${Math.round(x.cpuPerGiB.kernelShare * 100)}%` : '—';
    const added = k === 'baseline' ? '—' : `${r.addedLatency[k].p50us} / ${r.addedLatency[k].p99us}`;
    return `  ${pad(LABEL[k], 36)} ${pad(num(x.upMBps), 8)} ${pad(num(x.downMBps), 9)} ${pad(cpu, 32)} ${pad(`${x.p50us} / ${x.p99us}`, 14)} ${pad(added, 14)} ${x.directMiB}`;
  });
  const t = r.timeToDirect;
  const ttd = (k: 'listen' | 'stdio', from: string): string =>
    `  dk connect ${k === 'listen' ? '-L     ' : '--stdio'}: ${t[k].direct}/${t[k].starts} went direct; after_ms (from ${from}) median ${num(t[k].afterMs.median)} max ${num(t[k].afterMs.max)}; ` +
    `punch ms median ${num(t[k].punchMs.median)}; spawn → path=direct line median ${num(t[k].wallMs.median)} max ${num(t[k].wallMs.max)} ms`;
  const verdict = (x: { up: number; down: number; target: number; met: boolean }): string => `up ${x.up}×, down ${x.down}× (target ≥ ${x.target}×): ${x.met ? 'met' : 'NOT met'}`;
  return [
    `dk connect: direct vs relayed vs through the gateway (NAT lab, ${r.nat}; ${r.options.rounds} rounds, medians; ${r.cpus} cores shared by all the lab's processes)`,
    `  ${pad('path', 36)} ${pad('up MB/s', 8)} ${pad('down MB/s', 9)} ${pad('CPU s/GiB (conn+gw+agent) kernel', 32)} ${pad('RTT p50/p99 µs', 14)} ${pad('added p50/p99', 14)} MiB between NATs`,
    ...rows,
    `  one stream, ${r.options.mib} MiB up then ${r.options.mib} MiB down; RTT: ${r.options.pings} 1-byte round trips; baseline: ${r.method.baseline}`,
    `  direct ÷ relayed:            ${verdict(r.ratios.directOverRelayed)}`,
    `  direct ÷ through the gateway: ${verdict(r.ratios.directOverGateway)}`,
    `Time to the direct path (${t.listen.starts} starts each)`,
    ttd('listen', 'its start'),
    ttd('stdio', 'the first local connection'),
    ...(t.listen.relayedOnly.length + t.stdio.relayedOnly.length > 0 ? [`  starts that stayed relayed: ${[...t.listen.relayedOnly, ...t.stdio.relayedOnly].join(' | ')}`] : []),
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const r = await p2pPathSection({
    rounds: Math.max(1, Number(arg('--rounds') ?? 3)),
    mib: Number(arg('--mib') ?? 256),
    pings: Number(arg('--pings') ?? 2000),
    starts: Number(arg('--starts') ?? 10),
    out: arg('--out') ?? fileURLToPath(new URL('../docs/', import.meta.url)),
  });
  process.exit(r ? 0 : 1);
}
