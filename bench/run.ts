/**
 * The side-by-side benchmark (issue 4). In one run on loopback it starts and measures:
 *   direct TCP (the ceiling), a plain Node pipe relay (the ceiling for a userspace relay in Node),
 *   OpenSSH `ssh -R` against a local sshd it starts itself, DoorKeeper over the plain link and over
 *   the encrypted link, `dk connect` end to end (encrypted on both hops), three relays in a
 *   chain (the ceiling for `dk connect`'s three relaying processes), and a tunnel made of Node's
 *   own TLS 1.3 in two processes (what Node's built-in crypto does with nothing else in the way).
 * Figures: iperf3 single-stream throughput both ways and 8 parallel streams; wrk against an HTTP
 * target with keep-alive (rate, latency) and with Connection: close (new connections per second);
 * 1-byte round trips; resident memory per open session with 10,000 sessions; CPU seconds per GiB
 * moved by the tunnel's own processes. Prints tables with ratios, writes JSON and an SVG chart.
 * It asserts nothing.
 *
 * Traffic is measured in rounds (default 3): each round measures every contender in turn, and each
 * figure reported is the median over the rounds, so a burst of noise on the machine lands in one
 * round of every contender instead of in every figure of one.
 *
 * Memory and traffic are measured on separate starts of each contender: memory on fresh processes
 * (10,000 sessions opened and closed), then every contender is stopped and started again for the
 * traffic rounds. A process that has held 10,000 sessions is not the one a user runs: sshd, for one,
 * moved 462 MiB/s at 4.05 s/GiB after them and 652 MiB/s at 2.53 s/GiB fresh (docs/performance.md).
 *
 * Usage: npm run bench [-- --seconds N --rounds N --sessions N --only name,name --pause S --out DIR --baseline DIR]
 * (--only rendezvous: the RustDesk rendezvous and relay section alone, bench/rendezvous.ts;
 * --only p2p: dk connect direct vs relayed vs through the gateway in the NAT lab alone, bench/p2p-path.ts,
 * which needs root, ip and iptables and says why it is skipped otherwise)
 * --baseline DIR adds DoorKeeper's three contenders once more, run from another checkout (an
 * earlier commit, with its own node_modules), so a change is measured against the code before it
 * in the same run and on the same machine state.
 * (npm run bench runs bench/setup.sh first, which installs sshd, iperf3, wrk and openssl when missing.)
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connected } from '../src/util/connect.ts';
import { chartSvg } from './lib/chart.ts';
import { cpuSeconds, rss, tree } from './lib/proc.ts';
import { iperf, wrk, type WrkResult } from './lib/tools.ts';
import { p2pPathSection } from './p2p-path.ts';
import { rendezvousSection } from './rendezvous.ts';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const SECONDS = Number(arg('--seconds') ?? 4);
const ROUNDS = Math.max(1, Number(arg('--rounds') ?? 3));
const SESSIONS = Number(arg('--sessions') ?? 10_000);
const ONLY = arg('--only')?.split(',');
/**
 * Seconds of quiet before each round after the first. In a full run each contender sits idle for
 * minutes while the others are measured, and an idle Node process shrinks its heap; a run of a few
 * contenders (--only) keeps that with a pause.
 */
const PAUSE = Number(arg('--pause') ?? 0);
const OUT = arg('--out') ?? fileURLToPath(new URL('../docs/', import.meta.url));
const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const BASELINE = arg('--baseline');
const BASELINE_MAIN = BASELINE ? join(BASELINE, 'src/cli/main.ts') : null;
const BASELINE_PREFIX = 'baseline: ';
const RELAY = fileURLToPath(new URL('./relay.ts', import.meta.url));
const HTTP = fileURLToPath(new URL('./http-target.ts', import.meta.url));
const ECHO = fileURLToPath(new URL('./echo-target.ts', import.meta.url));
/** The hard open-file limit: a process holding two sockets per session can hold at most half of it. */
const FD_LIMIT = Number(spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim()) || 1024;
const children: ChildProcess[] = [];
const log = (s: string): void => void process.stderr.write(`${s}\n`);
/** Sections that --only runs without the side-by-side contenders. */
const SECTIONS = ['rendezvous', 'p2p'];
/** dk connect's paths in the NAT lab (issue 20): 256 MiB each way per round, 2,000 round trips, 10 starts of each kind. */
const p2pSection = (): Promise<unknown> => p2pPathSection({ rounds: ROUNDS, mib: 256, pings: 2000, starts: 10, out: OUT });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Ports { iperf: number; http: number; echo: number }
/** Three consecutive port numbers from `first`, one per target. */
const portsFrom = (first: number): Ports => ({ iperf: first, http: first + 1, echo: first + 2 });
type Side = 'server' | 'agent' | 'client';
interface Contender {
  name: string;
  ports: Ports;
  /** The tunnel's own processes, by side, for a given target (dk connect runs one process per target). */
  pids: (target: keyof Ports) => Partial<Record<Side, number[]>>;
  /** One of its processes holds two sockets per session (the relay). */
  twoSocketsPerSession?: boolean;
}

/** What one round measures of one contender. */
interface Traffic {
  up: number; down: number; par8: number;
  cpuPerGiB: number | null;
  keep: WrkResult; close: WrkResult; lat1: WrkResult;
  rttP50: number; rttP99: number;
}
interface Memory {
  memServer: number | null; memAgent: number | null; memClient: number | null;
  /** Sessions open for the memory figures. */
  sessions: number;
}
const NO_MEMORY: Memory = { memServer: null, memAgent: null, memClient: null, sessions: 0 };
/** A contender's medians over the rounds, its memory, and every round as measured. */
interface Figures extends Traffic, Memory {
  name: string;
  rounds: Traffic[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
const medianWrk = (ws: WrkResult[]): WrkResult => ({
  rps: median(ws.map((w) => w.rps)), p50: median(ws.map((w) => w.p50)), p99: median(ws.map((w) => w.p99)),
  errors: ws.reduce((a, w) => a + w.errors, 0),
});
/** Each figure's median over the rounds, taken figure by figure. */
function medianTraffic(ts: Traffic[]): Traffic {
  const cpu = ts.map((t) => t.cpuPerGiB).filter((x): x is number => x !== null);
  return {
    up: median(ts.map((t) => t.up)), down: median(ts.map((t) => t.down)), par8: median(ts.map((t) => t.par8)),
    cpuPerGiB: cpu.length ? median(cpu) : null,
    keep: medianWrk(ts.map((t) => t.keep)), close: medianWrk(ts.map((t) => t.close)), lat1: medianWrk(ts.map((t) => t.lat1)),
    rttP50: median(ts.map((t) => t.rttP50)), rttP99: median(ts.map((t) => t.rttP99)),
  };
}

function dial(port: number): Promise<Socket> {
  return connected(connect({ host: '127.0.0.1', port, noDelay: true }));
}

async function rtt(port: number, n: number): Promise<number[]> {
  const s = await dial(port);
  const one = Buffer.from([1]);
  const times: number[] = [];
  for (let i = 0; i < n + 100; i++) {
    const t0 = process.hrtime.bigint();
    s.write(one);
    await once(s, 'data');
    if (i >= 100) times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  s.destroy();
  return times.sort((a, b) => a - b);
}

/**
 * Opens `n` sessions through the tunnel, each proven end to end by an echoed byte, and keeps them
 * open. On failure every socket dialed so far is closed before the error is thrown.
 */
async function openSessions(port: number, n: number): Promise<Socket[]> {
  const open: Socket[] = [];
  const dialed = new Set<Socket>();
  let next = 0;
  let failed: Error | null = null;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (!failed && next++ < n) {
      try {
        const s = await dial(port);
        dialed.add(s);
        s.on('error', () => undefined);
        s.write('x');
        await once(s, 'data');
        open.push(s);
      } catch (e) {
        failed ??= e as Error;
      }
    }
  }));
  if (failed) {
    for (const s of dialed) s.destroy();
    throw new Error(`after ${open.length} sessions: ${(failed as Error).message}`);
  }
  return open;
}

// ---------- contenders ----------

function start(cmd: string, args: string[], ready: RegExp | null, opts: { stream?: 'stdout' | 'stderr'; timeoutMs?: number } = {}): Promise<ChildProcess> {
  // The memory round holds SESSIONS sessions on one link, for one user: above the default caps
  // (4,096 per link, 1,024 per user).
  const cap = String(SESSIONS + 1000);
  const caps = { DK_MAX_SESSIONS_PER_LINK: cap, DK_MAX_SESSIONS: cap, DK_MAX_SESSIONS_PER_USER: cap };
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...caps } });
  children.push(p);
  p.once('exit', () => children.splice(children.indexOf(p), 1));
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${cmd} ${args.join(' ')} not ready after ${opts.timeoutMs ?? 20_000} ms: ${buf}`)), opts.timeoutMs ?? 20_000);
    const onData = (c: Buffer): void => {
      buf += c.toString();
      if (ready?.test(buf)) { clearTimeout(timer); resolve(p); }
    };
    p.stdout.on('data', onData);
    p.stderr.on('data', onData);
    p.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${buf}`)); });
    if (!ready) { clearTimeout(timer); resolve(p); }
  });
}

async function waitPort(port: number, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      (await dial(port)).destroy();
      return;
    } catch (e) {
      if (Date.now() > until) throw e;
      await sleep(50);
    }
  }
}

async function sshContender(base: number, t: Ports, dir: string): Promise<Contender> {
  const hk = join(dir, 'ssh_host'); const ck = join(dir, 'ssh_client');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hk]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', ck]);
  writeFileSync(join(dir, 'authorized_keys'), execFileSync('cat', [`${ck}.pub`]), { mode: 0o600 });
  const cfg = join(dir, 'sshd_config');
  writeFileSync(cfg, [`Port ${base}`, 'ListenAddress 127.0.0.1', `HostKey ${hk}`, `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'PermitRootLogin prohibit-password', 'StrictModes no', 'UsePAM no',
    `PidFile ${join(dir, 'sshd.pid')}`, 'AllowTcpForwarding yes', 'MaxStartups 100', ''].join('\n'));
  mkdirSync('/run/sshd', { recursive: true });
  const sshd = await start('/usr/sbin/sshd', ['-D', '-e', '-f', cfg], /Server listening/);
  const p = portsFrom(base + 1);
  const user = execFileSync('id', ['-un'], { encoding: 'utf8' }).trim();
  const ssh = await start('ssh', ['-N', '-i', ck, '-p', String(base), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'ExitOnForwardFailure=yes', '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes',
    '-R', `${p.iperf}:127.0.0.1:${t.iperf}`, '-R', `${p.http}:127.0.0.1:${t.http}`, '-R', `${p.echo}:127.0.0.1:${t.echo}`, `${user}@127.0.0.1`], null);
  for (const port of Object.values(p)) await waitPort(port);
  const cipher = /cipher: (\S+)/.exec(execFileSync('ssh', ['-G', '127.0.0.1'], { encoding: 'utf8' }).replace('ciphers ', 'cipher: '))?.[1]?.split(',')[0];
  log(`  ssh -R up (OpenSSH default cipher ${cipher})`);
  return { name: 'ssh -R (OpenSSH)', ports: p, pids: () => ({ server: tree([sshd.pid!]), agent: [ssh.pid!] }) };
}

async function dkStack(name: string, base: number, t: Ports, dir: string, mode: 'plain' | 'link' | 'connect', main = MAIN): Promise<Contender> {
  const MAIN = main; // this contender's checkout
  const token = 'bench-admin-token-0123456789';
  const serv = base; const mgmt = base + 1;
  const data = join(dir, `gw-${base}`);
  const gw = await start(process.execPath, [MAIN, 'gateway', '--bind', '127.0.0.1', '--serv-port', String(serv), '--mgmt-port', String(mgmt), '--data-dir', data,
    '--backend', 'bench=bench-key-123', '--admin-token', token], /DoorKeeper gateway/);
  const pub = execFileSync(process.execPath, [MAIN, 'pubkey', '--data-dir', data], { encoding: 'utf8' }).trim();
  const agent = await start(process.execPath, [MAIN, 'agent', '--gateway', `127.0.0.1:${serv}`, '--name', 'bench', '--key', 'bench-key-123', '--allow', '127.0.0.1/32',
    ...(mode === 'plain' ? ['--plain'] : ['--gateway-key', pub])], /connected to gateway/);
  await sleep(300);
  if (mode !== 'connect') {
    const access = async (port: number): Promise<number> => {
      const res = await fetch(`http://127.0.0.1:${mgmt}/api/v1/access`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ backend: 'bench', port }) });
      if (!res.ok) throw new Error(`access bench:${port}: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { access_port: number }).access_port;
    };
    const ports = { iperf: await access(t.iperf), http: await access(t.http), echo: await access(t.echo) };
    return { name, ports, pids: () => ({ server: [gw.pid!], agent: [agent.pid!] }) };
  }
  const cp = portsFrom(base + 2);
  const connects: Partial<Record<keyof Ports, ChildProcess>> = {};
  for (const k of ['iperf', 'http', 'echo'] as const) {
    connects[k] = await start(process.execPath, [MAIN, 'connect', 'bench', String(t[k]), '-L', `127.0.0.1:${cp[k]}`, '--gateway', `127.0.0.1:${serv}`, '--gateway-key', pub, '--token', token], /dk connect:/);
  }
  return { name, ports: cp, pids: (k) => ({ server: [gw.pid!], agent: [agent.pid!], client: [connects[k]!.pid!] }) };
}

/** A contender started, and a function that stops the processes its start spawned (last first) and waits for them to exit. */
async function launch(def: { start: (dir: string) => Promise<Contender> }, parent: string): Promise<{ contender: Contender; stop: () => Promise<void> }> {
  // By identity, not position: children leave the list as they exit.
  const before = new Set(children);
  const contender = await def.start(mkdtempSync(join(parent, 'c-')));
  const own = children.filter((p) => !before.has(p));
  return {
    contender,
    stop: async () => {
      for (const p of own.reverse()) {
        if (p.exitCode !== null || p.signalCode !== null) continue;
        const exited = once(p, 'exit');
        p.kill('SIGTERM');
        await Promise.race([exited, sleep(5000).then(() => p.kill('SIGKILL'))]);
      }
    },
  };
}

async function main(): Promise<void> {
  if (ONLY && ONLY.every((o) => SECTIONS.includes(o))) {
    if (ONLY.includes('rendezvous')) await rendezvousSection({ peers: 100_000, seconds: SECONDS, punches: 2000, out: OUT });
    if (ONLY.includes('p2p')) await p2pSection();
    return;
  }
  const base = 21_000 + Math.floor(Math.random() * 9_000); // below the ephemeral range (32768+)
  const dir = mkdtempSync(join(tmpdir(), 'dk-bench-'));
  try {
    const versions = {
      node: process.version,
      openssh: spawnSync('ssh', ['-V'], { encoding: 'utf8' }).stderr.trim(),
      iperf3: execFileSync('iperf3', ['--version'], { encoding: 'utf8' }).split('\n')[0]!.trim(),
      wrk: spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0]!.replace(/ Copyright.*/, '').trim(),
    };
    log(`DoorKeeper benchmark: ${SECONDS} s per iperf3/wrk run, ${SESSIONS} sessions, node ${process.version}`);
    // Targets, each its own process: iperf3 server, HTTP server, echo server.
    const t = portsFrom(base);
    await start(process.execPath, [ECHO, String(t.echo)], /ready/);
    await start('iperf3', ['-s', '--forceflush', '-p', String(t.iperf)], /Server listening/);
    await start(process.execPath, [HTTP, String(t.http)], /ready/);

    // Only the contenders --only names are started (sshd's set-up and three DoorKeeper stacks
    // take a while, and idle processes of the others would share the machine).
    const rp = portsFrom(base + 10);
    /** A relay process (or one side of the TLS tunnel) forwarding each of `from`'s ports to the same kind of port of `to`. */
    const relayProcess = (from: Ports, to: Ports, tls: string[] = []): Promise<ChildProcess> =>
      start(process.execPath, [RELAY, ...tls, ...(['iperf', 'http', 'echo'] as const).map((k) => `${from[k]}:${to[k]}`)], /ready/);
    const all: { name: string; memory?: false; start: (dir: string) => Promise<Contender> }[] = [
      { name: 'direct TCP', start: () => Promise.resolve({ name: 'direct TCP', ports: t, pids: () => ({}) }) },
      {
        name: 'node pipe relay',
        start: async () => {
          const relay = await relayProcess(rp, t);
          return { name: 'node pipe relay', ports: rp, twoSocketsPerSession: true, pids: () => ({ server: [relay.pid!] }) };
        },
      },
      {
        // dk connect relays through three processes; this is the ceiling for any three-process
        // relay in Node, measured in the same run. No memory figures: the relay's own cover it.
        name: 'three node pipe relays in a chain',
        memory: false,
        start: async () => {
          const hop = (k: number): Ports => portsFrom(base + 60 + 3 * k);
          const pids: number[] = [];
          for (const [from, to] of [[hop(2), t], [hop(1), hop(2)], [hop(0), hop(1)]] as const) {
            pids.push((await relayProcess(from, to)).pid!);
          }
          return { name: 'three node pipe relays in a chain', ports: hop(0), twoSocketsPerSession: true, pids: () => ({ server: pids }) };
        },
      },
      {
        // The encrypted link's reference: Node's TLS 1.3 with the link's AEAD, two processes that
        // only pipe (a front that dials the back over TLS, a back next to the targets).
        name: 'node TLS 1.3 tunnel (two processes)',
        start: async (d) => {
          execFileSync('openssl', ['req', '-x509', '-newkey', 'ed25519', '-nodes', '-days', '1', '-subj', '/CN=dk-bench',
            '-keyout', join(d, 'key.pem'), '-out', join(d, 'cert.pem')], { stdio: 'ignore' });
          const front = portsFrom(base + 70);
          const back = portsFrom(base + 73);
          const b = await relayProcess(back, t, ['--tls', 'back', d]);
          const f = await relayProcess(front, back, ['--tls', 'front', d]);
          return { name: 'node TLS 1.3 tunnel (two processes)', ports: front, twoSocketsPerSession: true, pids: () => ({ server: [f.pid!], agent: [b.pid!] }) };
        },
      },
      { name: 'ssh -R (OpenSSH)', start: (d) => sshContender(base + 20, t, d) },
      // DoorKeeper: each contender gets its own gateway and agent, so that one contender's
      // sessions and transfers do not change the memory another one is charged with.
      { name: 'DoorKeeper plain link', start: (d) => dkStack('DoorKeeper plain link', base + 30, t, d, 'plain') },
      { name: 'DoorKeeper encrypted link', start: (d) => dkStack('DoorKeeper encrypted link', base + 40, t, d, 'link') },
      { name: 'dk connect (encrypted both hops)', start: (d) => dkStack('dk connect (encrypted both hops)', base + 50, t, d, 'connect') },
      ...(BASELINE_MAIN ? [
        { name: 'baseline: DoorKeeper plain link', start: (d: string) => dkStack('baseline: DoorKeeper plain link', base + 100, t, d, 'plain', BASELINE_MAIN) },
        { name: 'baseline: DoorKeeper encrypted link', start: (d: string) => dkStack('baseline: DoorKeeper encrypted link', base + 110, t, d, 'link', BASELINE_MAIN) },
        { name: 'baseline: dk connect (encrypted both hops)', start: (d: string) => dkStack('baseline: dk connect (encrypted both hops)', base + 120, t, d, 'connect', BASELINE_MAIN) },
      ] : []),
    ];
    const defs = all.filter((c) => !ONLY || ONLY.some((o) => c.name.toLowerCase().includes(o.toLowerCase())));
    // Memory on fresh processes, one contender at a time; then fresh processes again for traffic.
    const memory: Memory[] = [];
    for (const def of defs) {
      if (SESSIONS === 0 || def.memory === false) {
        memory.push(NO_MEMORY);
        continue;
      }
      const { contender, stop } = await launch(def, dir);
      memory.push(await measureMemory(contender));
      await stop();
    }
    const chosen: Contender[] = [];
    for (const def of defs) chosen.push((await launch(def, dir)).contender);
    const rounds: Traffic[][] = chosen.map(() => []);
    for (let r = 1; r <= ROUNDS; r++) {
      if (r > 1 && PAUSE > 0) {
        log(`pausing ${PAUSE} s`);
        await sleep(PAUSE * 1000);
      }
      log(`round ${r} of ${ROUNDS}`);
      for (const [i, c] of chosen.entries()) rounds[i]!.push(await measureTraffic(c));
    }
    report(chosen.map((c, i) => ({ name: c.name, ...medianTraffic(rounds[i]!), ...memory[i]!, rounds: rounds[i]! })), versions);
    // The RustDesk rendezvous and relay (issue 19), in the same run: --only rendezvous runs it alone.
    if (!ONLY || ONLY.includes('rendezvous')) {
      for (const c of children) c.kill('SIGTERM');
      await sleep(500);
      await rendezvousSection({ peers: 100_000, seconds: SECONDS, punches: 2000, out: OUT });
    }
    // dk connect direct vs relayed vs through the gateway, in the NAT lab (issue 20): --only p2p runs it alone.
    if (!ONLY || ONLY.includes('p2p')) {
      for (const c of children) c.kill('SIGTERM');
      await sleep(500);
      await p2pSection();
    }
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await sleep(300);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measureMemory(c: Contender): Promise<Memory> {
  log(`memory: ${c.name}`);
  // On processes started for this alone: a transfer grows their heaps and allocator arenas, and
  // sessions opened later would reuse that memory and look free.
  // RSS of each side before and with the sessions open; 200 sessions first warm up the code path.
  const sides = c.pids('echo');
  if (sides.server) {
    for (const s of await openSessions(c.ports.echo, 200)) s.destroy();
    await sleep(1000);
  }
  const before = { server: rss(sides.server ?? []), agent: rss(sides.agent ?? []), client: rss(sides.client ?? []) };
  const t0 = performance.now();
  let open: Socket[] = [];
  let mem: Memory = NO_MEMORY;
  // A tunnel process that holds two sockets per session (the relay) is limited
  // by the open-file limit, which an unprivileged sandbox may not be able to raise.
  const n = c.twoSocketsPerSession ? Math.min(SESSIONS, Math.floor((FD_LIMIT - 1000) / 2 / 1000) * 1000) : SESSIONS;
  try {
    if (!sides.server) throw new Error('skipped (no tunnel process)');
    open = await openSessions(c.ports.echo, n);
    await sleep(1000);
    const per = (side: Side): number | null => (sides[side] ? (rss(sides[side]) - before[side]) / open.length : null);
    mem = { memServer: per('server'), memAgent: per('agent'), memClient: per('client'), sessions: open.length };
    log(`  ${open.length} sessions in ${(performance.now() - t0).toFixed(0)} ms; per session: server ${fmtB(mem.memServer)}, agent ${fmtB(mem.memAgent)}, client ${fmtB(mem.memClient)}`);
  } catch (e) {
    log(`  sessions: ${(e as Error).message}`);
  } finally {
    for (const s of open) s.destroy();
    await sleep(2000);
  }
  return mem;
}

async function measureTraffic(c: Contender): Promise<Traffic> {
  log(`  ${c.name}`);
  const all = (k: keyof Ports): number[] => Object.values(c.pids(k)).flat();
  await iperf(c.ports.iperf, { seconds: 1 }); // warm-up
  const cpu0 = cpuSeconds(all('iperf'));
  const up = await iperf(c.ports.iperf, { seconds: SECONDS });
  const cpu1 = cpuSeconds(all('iperf'));
  const down = await iperf(c.ports.iperf, { seconds: SECONDS, reverse: true });
  const cpu2 = cpuSeconds(all('iperf'));
  const par8 = await iperf(c.ports.iperf, { seconds: SECONDS, streams: 8 });
  // iperf3's -O 1 omits the first second from the bytes but not from the CPU; charge the whole run.
  const moved = (up.bytes / SECONDS) * (SECONDS + 1) + (down.bytes / SECONDS) * (SECONDS + 1);
  const cpuPerGiB = all('iperf').length ? (cpu2 - cpu0) / (moved / 2 ** 30) : null;
  log(`    iperf3 up ${up.mibps.toFixed(0)} down ${down.mibps.toFixed(0)} x8 ${par8.mibps.toFixed(0)} MiB/s; tunnel cpu ${cpuPerGiB?.toFixed(2) ?? '-'} s/GiB (up ${(cpu1 - cpu0).toFixed(1)} s)`);
  await wrk(c.ports.http, { seconds: 1, connections: 16 }); // warm-up
  const keep = await wrk(c.ports.http, { seconds: SECONDS, connections: 16 });
  const lat1 = await wrk(c.ports.http, { seconds: SECONDS, connections: 1 });
  const close = await wrk(c.ports.http, { seconds: SECONDS, connections: 16, close: true });
  log(`    wrk keep-alive ${keep.rps.toFixed(0)} req/s; 1 conn p50 ${lat1.p50.toFixed(3)} ms; Connection: close ${close.rps.toFixed(0)} req/s (errors ${keep.errors}/${lat1.errors}/${close.errors})`);
  const r = await rtt(c.ports.echo, 2000);
  return {
    up: up.mibps, down: down.mibps, par8: par8.mibps, cpuPerGiB, keep, close, lat1,
    rttP50: r[Math.floor(r.length / 2)]!, rttP99: r[Math.floor(r.length * 0.99)]!,
  };
}

const fmtB = (b: number | null): string => (b === null ? '-' : `${(b / 1024).toFixed(1)} KiB`);

function report(rs: Figures[], versions: { node: string; openssh: string; iperf3: string; wrk: string }): void {
  const by = (n: string): Figures | undefined => rs.find((r) => r.name.startsWith(n));
  const direct = by('direct'); const relay = by('node pipe'); const chain = by('three node pipe'); const ssh = by('ssh');
  /**
   * The relevant ceiling: the relay for a tunnel (the issue's), three chained relays for `dk
   * connect`'s three relaying processes when they were measured, direct TCP for the relays.
   */
  const ceilingOf = (r: Figures): { c: Figures; label: string } | undefined => {
    if (r === direct) return undefined;
    if (r.name.replace(BASELINE_PREFIX, '').startsWith('dk connect') && chain) return { c: chain, label: '3 relays' };
    if (r === relay || r === chain || !relay) return direct ? { c: direct, label: 'direct' } : undefined;
    return { c: relay, label: 'relay' };
  };
  const n0 = (x: number): string => x.toFixed(0);
  const n3 = (x: number): string => x.toFixed(3);
  const ratio = (a: number, b: number | undefined): string => (b ? (a / b).toFixed(2) : '-');
  const lines: string[] = [];
  const p = (s: string): void => { lines.push(s); };
  p(`Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${release()}`);
  p(`Versions: node ${versions.node}; ${versions.openssh}; ${versions.iperf3}; ${versions.wrk}`);
  p(`Date: ${new Date().toISOString().slice(0, 10)}; iperf3 and wrk runs of ${SECONDS} s; each figure the median of ${ROUNDS} rounds; ${SESSIONS} open sessions for memory`);
  p('');
  p(`Throughput (iperf3, MiB/s) and the tunnel's CPU (its own processes, up + down runs); medians of ${ROUNDS} rounds:`);
  p('');
  p('| contender | up | down | 8 streams | 8 streams / 1 | CPU s/GiB | up vs ssh -R | up vs ceiling |');
  p('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rs) {
    const ceiling = ceilingOf(r);
    p(`| ${r.name} | ${n0(r.up)} | ${n0(r.down)} | ${n0(r.par8)} | ${(r.par8 / r.up).toFixed(2)} | ${r.cpuPerGiB === null ? '-' : r.cpuPerGiB.toFixed(2)} | ${ratio(r.up, ssh?.up)} | ${ceiling ? `${ratio(r.up, ceiling.c.up)} (${ceiling.label})` : '-'} |`);
  }
  p('');
  // The spread behind the medians, per round, for the figures the targets are about.
  const perRound = (title: string, fig: (t: Traffic, i: number) => string): void => {
    p(title);
    p('');
    p(`| contender | ${rs[0]!.rounds.map((_, i) => `round ${i + 1}`).join(' | ')} |`);
    p(`|---|${rs[0]!.rounds.map(() => '---:').join('|')}|`);
    for (const r of rs) p(`| ${r.name} | ${r.rounds.map(fig).join(' | ')} |`);
    p('');
  };
  perRound('Single-stream upload in each round (MiB/s): the spread behind the medians above:', (t) => n0(t.up));
  perRound('8 streams / 1 stream in each round:', (t) => (t.par8 / t.up).toFixed(2));
  perRound('Added p50 latency in each round (ms; 1 conn p50 minus direct TCP\'s in the same round):', (t, i) => (direct ? n3(t.lat1.p50 - direct.rounds[i]!.lat1.p50) : '-'));
  perRound('New connections per second in each round (Connection: close, 16):', (t) => n0(t.close.rps));
  p('HTTP through the tunnel (wrk; a 2-byte response), and 1-byte round trips on an open connection:');
  p('');
  p('| contender | keep-alive req/s (16 conns) | p50 ms | p99 ms | 1 conn p50 ms | added p50 ms | added p50 − ceiling\'s | new conns/s (Connection: close, 16) | p50 ms | p99 ms | conns/s vs ssh -R | conns/s vs ceiling | RTT p50 ms | RTT p99 ms |');
  p('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const added = (r: Figures): number | undefined => (direct ? r.lat1.p50 - direct.lat1.p50 : undefined);
  for (const r of rs) {
    const ceiling = ceilingOf(r);
    const a = added(r);
    const ca = ceiling ? added(ceiling.c) : undefined;
    p(`| ${r.name} | ${n0(r.keep.rps)} | ${n3(r.keep.p50)} | ${n3(r.keep.p99)} | ${n3(r.lat1.p50)} | ${a === undefined ? '-' : n3(a)} | ${a === undefined || ca === undefined ? '-' : `${n3(a - ca)} (${ceiling!.label})`} | ${n0(r.close.rps)} | ${n3(r.close.p50)} | ${n3(r.close.p99)} | ${ratio(r.close.rps, ssh?.close.rps)} | ${ceiling ? `${ratio(r.close.rps, ceiling.c.close.rps)} (${ceiling.label})` : '-'} | ${n3(r.rttP50)} | ${n3(r.rttP99)} |`);
  }
  p('');
  // The encrypted link beside what Node's own TLS does with no mux, framing or resume.
  const tlsTunnel = by('node TLS'); const enc = by('DoorKeeper encrypted');
  if (tlsTunnel && enc) {
    const cpu = enc.cpuPerGiB !== null && tlsTunnel.cpuPerGiB !== null ? ratio(enc.cpuPerGiB, tlsTunnel.cpuPerGiB) : '-';
    const [ea, ta] = [added(enc), added(tlsTunnel)];
    p(`The encrypted link against the node TLS 1.3 tunnel: up ${ratio(enc.up, tlsTunnel.up)} ×, down ${ratio(enc.down, tlsTunnel.down)} ×, ` +
      `tunnel CPU per GiB ${cpu} ×, added p50 ${ea === undefined ? '-' : n3(ea)} against ${ta === undefined ? '-' : n3(ta)} ms, ` +
      `new connections/s ${ratio(enc.close.rps, tlsTunnel.close.rps)} ×.`);
    p('');
  }
  // This checkout against the baseline checkout (--baseline), contender by contender, same run.
  for (const r of rs.filter((x) => x.name.startsWith(BASELINE_PREFIX))) {
    const now = by(r.name.slice(BASELINE_PREFIX.length));
    if (!now) continue;
    const cpu = now.cpuPerGiB !== null && r.cpuPerGiB !== null ? ratio(now.cpuPerGiB, r.cpuPerGiB) : '-';
    const [na, ba] = [added(now), added(r)];
    p(`${now.name} against the baseline (${BASELINE ?? '?'}): up ${ratio(now.up, r.up)} ×, down ${ratio(now.down, r.down)} ×, 8 streams ${ratio(now.par8, r.par8)} ×, ` +
      `CPU per GiB ${cpu} ×, added p50 ${na === undefined ? '-' : n3(na)} against ${ba === undefined ? '-' : n3(ba)} ms, new connections/s ${ratio(now.close.rps, r.close.rps)} ×.`);
  }
  p('');
  p(`Resident memory per open session (${SESSIONS} sessions open at once; RSS growth / sessions):`);
  p('');
  p('| contender | sessions | server side (gateway / sshd / relay) | agent side (agent / ssh client) | client side (dk connect) | total vs ssh -R |');
  p('|---|---:|---:|---:|---:|---:|');
  const tot = (r: Figures): number => (r.memServer ?? 0) + (r.memAgent ?? 0) + (r.memClient ?? 0);
  for (const r of rs) {
    if (r === direct || r === chain) continue;
    p(`| ${r.name} | ${r.sessions} | ${fmtB(r.memServer)} | ${fmtB(r.memAgent)} | ${fmtB(r.memClient)} | ${ssh ? ratio(tot(r), tot(ssh)) : '-'} |`);
  }
  const text = lines.join('\n');
  console.log(`\n${text}`);
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, 'performance-results.json'), JSON.stringify({ date: new Date().toISOString(), versions, seconds: SECONDS, rounds: ROUNDS, sessions: SESSIONS, results: rs }, null, 2) + '\n');
  const names = rs.map((r) => r.name);
  writeFileSync(join(OUT, 'performance.svg'), chartSvg('DoorKeeper vs the alternatives, loopback, one run',
    `${new Date().toISOString().slice(0, 10)} · ${cpus().length} cores · node ${versions.node} · ${versions.openssh.split(',')[0]} · iperf3 + wrk`, names, [
      { title: 'Single stream, upload (iperf3)', unit: 'MiB/s', values: rs.map((r) => r.up) },
      { title: 'Single stream, download (iperf3 -R)', unit: 'MiB/s', values: rs.map((r) => r.down) },
      { title: '8 parallel streams (iperf3 -P 8)', unit: 'MiB/s', values: rs.map((r) => r.par8) },
      { title: 'HTTP requests, keep-alive (wrk -c 16)', unit: 'requests/s', values: rs.map((r) => r.keep.rps) },
      { title: 'New connections (wrk, Connection: close)', unit: 'connections/s', values: rs.map((r) => r.close.rps) },
      { title: 'Request latency p50, 1 connection', unit: 'ms', lowerIsBetter: true, values: rs.map((r) => r.lat1.p50) },
      { title: 'Tunnel CPU per GiB moved', unit: 'CPU seconds', lowerIsBetter: true, values: rs.map((r) => r.cpuPerGiB) },
      { title: 'Memory per open session, all sides', unit: `KiB RSS (${SESSIONS} sessions)`, lowerIsBetter: true, values: rs.map((r) => (r === direct || r === chain ? null : tot(r) / 1024)) },
      { title: '1-byte round trip p50', unit: 'ms', lowerIsBetter: true, values: rs.map((r) => r.rttP50) },
    ]));
  log(`wrote ${join(OUT, 'performance.svg')} and performance-results.json`);
}

await main();
process.exit(0);
