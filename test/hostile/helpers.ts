/**
 * Harness for the hostile-load suite (issue "Hold under hostile and broken conditions"): real
 * `dk gateway` and `dk agent` processes (bin/dk.js, the Node that runs the tests), a YAML config
 * in a fresh temp dir, dynamic ports, loopback only; attack tools (a raw plain-mode agent, flood
 * writers, a fake gateway) and the measurements the assertions print (RSS from /proc, fd and
 * connection counts, stderr bytes).
 *
 * DK_HOSTILE_BEFORE=1 leaves the configuration keys the fixes add out of the config file, so the
 * same attacks run against code that does not know them (a strict schema refuses unknown keys).
 * DK_HOSTILE_REPORT=FILE appends every figure as a JSON line to FILE.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { once } from 'node:events';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { makeHandshake } from '../../src/auth/handshake.ts';
import { Command, Decoder, encodeCmd, encodeHello, Feature, FrameType, PROTOCOL_VERSION, type Frame } from '../../src/protocol/index.ts';
import { http, patternChunk } from '../helpers/net.ts';

export const BEFORE = process.env.DK_HOSTILE_BEFORE === '1';
export const MiB = 2 ** 20;
/** Every RSS assertion: a process may grow at most this much over its pre-attack value. */
export const RSS_BOUND_MIB = 128;
/** An attack stops early once a process grew this much (the BEFORE code would eat the machine). */
export const ATTACK_CAP_MIB = 1024;

export const ADMIN = 'admin-token-for-hostile-tests-0123456789';
export const KEYS = { home: 'home-key-for-hostile-tests', probe: 'probe-key-for-hostile-tests', evil: 'evil-key-for-hostile-tests' } as const;

/**
 * The keys the fixes add, with the small values the suite uses (defaults in parentheses):
 * max_pending_per_ip (32), max_pending_handshakes (1024), max_exposes_per_agent (64),
 * auth_fail_limit_user (10 per 15 min), mgmt_max_connections (256), auth_log_interval (60 s),
 * max_sessions_per_link (4096).
 */
export const LIMITS = {
  max_sessions_per_link: 50,
  max_sessions_per_user: 20,
  max_pending_per_ip: 16,
  max_pending_handshakes: 256,
  max_exposes_per_agent: 8,
  auth_fail_limit_user: 10,
  mgmt_max_connections: 64,
  auth_log_interval: 2,
} as const;

const BIN = fileURLToPath(new URL('../../bin/dk.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

// ------------------------------------------------------------------ reporting

/** Prints one figure (`# attack: NAME …`) and, with DK_HOSTILE_REPORT, records it. */
export function report(attack: string, text: string, data: Record<string, unknown> = {}): void {
  console.log(`# attack: ${attack} ${text}${BEFORE ? ' [BEFORE mode]' : ''}`);
  const file = process.env.DK_HOSTILE_REPORT;
  if (file) appendFileSync(file, JSON.stringify({ attack, text, before: BEFORE, ...data }) + '\n');
}

// ------------------------------------------------------------------ /proc measurements

/** VmRSS of a process in MiB, or NaN when it is gone. */
export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Open file descriptors of a process, or NaN when it is gone. */
export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

/** Established TCP connections on local port `port` whose peer address is `peer` (as `ss` sees them). */
export function establishedFrom(port: number, peer: string): number {
  const out = execFileSync('ss', ['-tnH', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' });
  return out.split('\n').filter((l) => {
    const cols = l.trim().split(/\s+/);
    return cols.length >= 4 && cols[3]!.startsWith(`${peer}:`);
  }).length;
}

/**
 * Samples the RSS of some processes every 100 ms: the peak of each, and `tripped` once any grew
 * more than `capMiB` over its value at the start (the attack then stops: a bounded experiment).
 */
export class RssWatch {
  readonly base = new Map<number, number>();
  readonly peak = new Map<number, number>();
  tripped = false;
  readonly #timer: NodeJS.Timeout;

  constructor(pids: number[], capMiB = ATTACK_CAP_MIB) {
    for (const p of pids) { const r = rssMiB(p); this.base.set(p, r); this.peak.set(p, r); }
    this.#timer = setInterval(() => {
      for (const p of pids) {
        const r = rssMiB(p);
        if (Number.isNaN(r)) { this.tripped = true; continue; } // the process died: stop the attack
        if (r > this.peak.get(p)!) this.peak.set(p, r);
        if (r - this.base.get(p)! > capMiB) this.tripped = true;
      }
    }, 100);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

// ------------------------------------------------------------------ processes

export interface Proc {
  child: ChildProcess;
  pid: number;
  out(): string;
  /** The last 64 KiB of stderr (the JSON logs). */
  errTail(): string;
  /** Bytes written to stderr so far. */
  errBytes(): number;
  exited: Promise<number | null>;
  alive(): boolean;
  /** The exit code once it exited (-1: killed by a signal), else undefined. */
  exitCode(): number | null | undefined;
}

/**
 * Every child still running when the test process exits is killed then, even when the runner
 * force-exits past a failed test's `finally`: no gateway outlives its test.
 */
const running = new Set<ChildProcess>();
process.on('exit', () => { for (const c of running) c.kill('SIGKILL'); });

export function spawnDk(args: string[], cwd: string): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
  running.add(child);
  let out = '';
  let err = '';
  let errBytes = 0;
  let alive = true;
  let exitCode: number | null | undefined;
  child.stdout.on('data', (c: Buffer) => { if (out.length < 65536) out += c.toString(); });
  child.stderr.on('data', (c: Buffer) => {
    errBytes += c.length;
    err = (err + c.toString()).slice(-65536);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => {
    alive = false;
    running.delete(child);
    exitCode = code ?? (signal ? -1 : null);
    resolve(exitCode);
  }));
  return { child, pid: child.pid!, out: () => out, errTail: () => err, errBytes: () => errBytes, exited, alive: () => alive, exitCode: () => exitCode };
}

/** Stops a process: `signal` first, SIGKILL after `graceMs`. Safe to call twice or on a dead process. */
export async function kill(p: Proc | null | undefined, signal: NodeJS.Signals = 'SIGKILL', graceMs = 3000): Promise<void> {
  if (!p || !p.alive()) return;
  p.child.kill(signal);
  const t = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(t);
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'dk-hostile-'));
}

export async function until<T>(f: () => T | Promise<T>, ms: number, what: string): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Resolves true when `s` emits `name`, false if it closes first; never rejects (events.once
 * rejects on 'error', and a hostile test sees resets all the time). `name` 'close' resolves true.
 */
export function event(s: Socket, name: 'connect' | 'close' | 'drain'): Promise<boolean> {
  if (s.destroyed) return Promise.resolve(name === 'close');
  return new Promise((resolve) => {
    const on = (): void => { s.off('close', off); resolve(true); };
    const off = (): void => { s.off(name, on); resolve(name === 'close'); };
    s.once(name, on);
    if (name !== 'close') s.once('close', off);
  });
}

// ------------------------------------------------------------------ gateway and agent

export interface Gateway {
  proc: Proc;
  dir: string;
  dataDir: string;
  configFile: string;
  config: Record<string, unknown>;
  servPort: number;
  mgmtPort: number;
  api: string;
  pubKey: string;
}

/**
 * Starts `dk gateway -c FILE` with a YAML config in `dir`: loopback, dynamic serv/mgmt ports
 * (fixed ones when given: a restart), access ports from a random base, backends home, probe and
 * evil. `hardened` holds keys the fixes add; DK_HOSTILE_BEFORE=1 leaves them out.
 */
export async function startGateway(o: { dir?: string; over?: Record<string, unknown>; hardened?: Record<string, unknown>; ports?: { serv: number; mgmt: number; access: string } } = {}): Promise<Gateway> {
  const dir = o.dir ?? tempDir();
  const dataDir = join(dir, 'data');
  for (let attempt = 0; ; attempt++) {
    const base = randomInt(20_000, 31_000);
    const config: Record<string, unknown> = {
      bind: '127.0.0.1',
      serv_port: o.ports?.serv ?? 0,
      mgmt_port: o.ports?.mgmt ?? 0,
      access_ports: o.ports?.access ?? `${base}-${base + 20}`,
      data_dir: dataDir,
      admin_token: ADMIN,
      backends: Object.fromEntries(Object.entries(KEYS).map(([name, key]) => [name, { key }])),
      keepalive: 2,
      sweep_interval: 0.2,
      log_level: 'info',
      ...o.over,
      ...(BEFORE ? {} : o.hardened ?? {}),
    };
    const configFile = join(dir, 'gateway.yaml');
    writeFileSync(configFile, stringify(config), { mode: 0o600 });
    const proc = spawnDk(['gateway', '-c', configFile], ROOT);
    const line = /agents on :(\d+), API on :(\d+).*link public key (\S+)/;
    try {
      const m = await until(() => {
        if (!proc.alive()) throw new Error(`gateway exited: ${proc.errTail().slice(-2000).replace(/\s*\n\s*/g, ' ')}`);
        return line.exec(proc.out());
      }, 20_000, 'the gateway to listen');
      const servPort = Number(m[1]);
      const mgmtPort = Number(m[2]);
      return { proc, dir, dataDir, configFile, config, servPort, mgmtPort, api: `http://127.0.0.1:${mgmtPort}`, pubKey: m[3]! };
    } catch (e) {
      await kill(proc);
      if (!/EADDRINUSE/.test(String(e)) || attempt >= 4 || o.ports) throw e;
    }
  }
}

/** Restarts a gateway on the same config, data dir and ports (SIGTERM, wait for its exit, start again). */
export async function restartGateway(g: Gateway): Promise<Gateway> {
  await kill(g.proc, 'SIGTERM', 8000);
  const { admin_token: _a, backends: _b, bind: _c, data_dir: _d, serv_port: _e, mgmt_port: _f, access_ports: access, ...over } = g.config;
  const hardened = BEFORE ? {} : Object.fromEntries(Object.entries(over).filter(([k]) => k in LIMITS));
  const rest = Object.fromEntries(Object.entries(over).filter(([k]) => !(k in LIMITS)));
  return startGateway({ dir: g.dir, over: rest, hardened, ports: { serv: g.servPort, mgmt: g.mgmtPort, access: access as string } });
}

/** Starts `dk agent -c FILE` (encrypted link unless `plain`), allowed to dial 127.0.0.0/8. */
export function startAgent(o: { dir: string; gateway: string; pubKey?: string; name?: string; key?: string; plain?: boolean }): Proc {
  const config = {
    gateway: o.gateway,
    name: o.name ?? 'home',
    key: o.key ?? KEYS.home,
    ...(o.plain ? { plain: true } : { gateway_key: o.pubKey }),
    lan_nets: ['127.0.0.0/8'],
    reconnect_min: 0.05,
    reconnect_max: 0.5,
    keepalive: 2,
  };
  const file = join(o.dir, `agent-${randomBytes(3).toString('hex')}.yaml`);
  writeFileSync(file, stringify(config), { mode: 0o600 });
  return spawnDk(['agent', '-c', file], ROOT);
}

export async function backendState(g: Gateway, name: string): Promise<{ online: boolean; remote?: string } | null> {
  try {
    const r = await http('GET', `${g.api}/api/v1/backends`, { token: ADMIN });
    if (r.status !== 200) return null;
    return (r.json.backends as { name: string; online: boolean; remote?: string }[]).find((b) => b.name === name) ?? null;
  } catch {
    return null;
  }
}

export async function waitOnline(g: Gateway, name = 'home', ms = 15_000): Promise<void> {
  await until(async () => (await backendState(g, name))?.online, ms, `backend ${name} online`);
}

/** A gateway, one real agent (backend home) and an echo server, in a fresh temp dir. */
export interface Stack {
  gw: Gateway;
  agent: Proc;
  echo: { server: Server; port: number };
  dir: string;
  /** Kills every process and server of the stack and removes its temp dir. */
  close(): Promise<void>;
  /**
   * Starts the agent again if its process is gone, and says so (`dk agent` on 3e52b37 exits when
   * its link drops, e.g. at a gateway restart: its reconnect timer is unref'd; see the
   * agent-restart test). Returns the exit code of the process that was gone, or null.
   */
  reviveAgent(attack: string): Promise<number | null>;
}

export async function startStack(o: { over?: Record<string, unknown>; hardened?: Record<string, unknown>; plainAgent?: boolean } = {}): Promise<Stack> {
  const dir = tempDir();
  const echo = await echoServer();
  const stack: Stack = {
    gw: null as unknown as Gateway,
    agent: null as unknown as Proc,
    echo, dir,
    async close() {
      await Promise.all([kill(stack.agent as Proc | null), kill((stack.gw as Gateway | null)?.proc)]);
      echo.server.close();
      rmSync(dir, { recursive: true, force: true });
    },
    async reviveAgent(attack) {
      if (stack.agent.alive()) return null;
      const code = await stack.agent.exited;
      report(attack, `the real agent process had exited (code ${code}) when its gateway link dropped; started a new one to go on (a separate bug: see agent-restart)`);
      stack.agent = startAgent({ dir, gateway: `127.0.0.1:${stack.gw.servPort}`, pubKey: stack.gw.pubKey, ...(o.plainAgent ? { plain: true } : {}) });
      return code;
    },
  };
  try {
    stack.gw = await startGateway({ dir, ...(o.over ? { over: o.over } : {}), ...(o.hardened ? { hardened: o.hardened } : {}) });
    stack.agent = startAgent({ dir, gateway: `127.0.0.1:${stack.gw.servPort}`, pubKey: stack.gw.pubKey, ...(o.plainAgent ? { plain: true } : {}) });
    await waitOnline(stack.gw);
    return stack;
  } catch (e) {
    await stack.close();
    throw e;
  }
}

// ------------------------------------------------------------------ legitimate traffic

export function echoServer(): Promise<{ server: Server; port: number }> {
  return listenOn((s) => { s.on('error', () => undefined); s.pipe(s); });
}

export async function listenOn(handler: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

export interface Transfer {
  ok: boolean;
  bytes: number;
  ms: number;
  detail: string;
}

/**
 * A legitimate client: asks the API for access to the echo server (admin token, from
 * 127.0.0.1), pushes `bytes` of a pattern through the access port and the real agent, and
 * compares the sha256 of what came back. Never throws: the result says what went wrong.
 */
export async function legitTransfer(g: Gateway, echoPort: number, bytes = 4 * MiB, timeoutMs = 15_000): Promise<Transfer> {
  const t0 = Date.now();
  let sock: Socket | null = null;
  const timer = setTimeout(() => sock?.destroy(new Error(`no full echo within ${timeoutMs} ms`)), timeoutMs);
  try {
    const r = await http('POST', `${g.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: echoPort } });
    if (r.status !== 201) return { ok: false, bytes: 0, ms: Date.now() - t0, detail: `POST /api/v1/access answered ${r.status}: ${r.text.slice(0, 200)}` };
    const s = connect({ host: '127.0.0.1', port: r.json.access_port as number, allowHalfOpen: true });
    sock = s;
    if (!(await event(s, 'connect'))) return { ok: false, bytes: 0, ms: Date.now() - t0, detail: 'the access port closed the connection' };
    const got = createHash('sha256');
    let received = 0;
    let error: Error | null = null;
    s.on('error', (e) => { error ??= e; });
    s.on('data', (c: Buffer) => { got.update(c); received += c.length; });
    const done = new Promise<void>((resolve) => {
      s.once('end', () => resolve());
      s.once('close', () => resolve());
    });
    const sent = createHash('sha256');
    const CH = 256 * 1024;
    for (let off = 0; off < bytes; off += CH) {
      const c = patternChunk(7, off, Math.min(CH, bytes - off));
      sent.update(c);
      if (!s.write(c)) await event(s, 'drain');
      if (s.destroyed) break;
    }
    s.end();
    await done;
    const ok = received === bytes && got.digest('hex') === sent.digest('hex');
    const why = error ? ` (${(error as Error).message})` : '';
    return { ok, bytes: received, ms: Date.now() - t0, detail: ok ? 'sha256 equal' : `got ${received} of ${bytes} bytes back${received === bytes ? ', sha256 differs' : ''}${why}` };
  } catch (e) {
    return { ok: false, bytes: 0, ms: Date.now() - t0, detail: (e as Error).message };
  } finally {
    clearTimeout(timer);
    sock?.destroy();
  }
}

// ------------------------------------------------------------------ raw plain-mode agent

/** Reads DK frames from a socket; `frames` collects them (bounded), `onFrame` sees each. */
export function frameReader(s: Socket, onFrame?: (f: Frame) => void): { frames: Frame[]; failed: () => Error | null } {
  const d = new Decoder();
  const frames: Frame[] = [];
  let failed: Error | null = null;
  s.on('data', (c: Buffer) => {
    if (failed) return;
    try {
      d.push(c, (f) => { if (frames.length < 10_000) frames.push(f); onFrame?.(f); });
    } catch (e) {
      failed = e as Error;
    }
  });
  return { frames, failed: () => failed };
}

export function helloFrame(features: number, window = 256 * 1024): Buffer {
  return encodeCmd(0, Command.HELLO, encodeHello({ version: PROTOCOL_VERSION, features, window }));
}

/**
 * A plain-mode agent written by hand (SPEC §4): connects (from `localAddress`), sends the 32-byte
 * handshake and, unless `hello` is null, a HELLO with those features. The caller decides whether
 * to read.
 */
export async function rawAgent(port: number, o: { name: string; key: string; localAddress?: string; hello?: number | null; handshake?: Buffer }): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port, localAddress: o.localAddress ?? '127.0.0.1', noDelay: true });
  s.on('error', () => undefined);
  if (!(await event(s, 'connect'))) throw new Error('closed before connecting');
  const hs = o.handshake ?? makeHandshake(o.name, o.key);
  const hello = o.hello === null ? Buffer.alloc(0) : helloFrame(o.hello ?? (Feature.FLOW | Feature.PONG | Feature.EXPOSE));
  s.write(Buffer.concat([hs, hello]));
  return s;
}

/**
 * A legitimate agent logs in: a plain-mode handshake for backend `probe` from `localAddress`,
 * then a HELLO; logged in = the gateway's HELLO came back. Never throws.
 */
export async function probeLogin(port: number, localAddress = '127.0.0.9', timeoutMs = 5000): Promise<{ ok: boolean; ms: number; detail: string }> {
  const t0 = Date.now();
  let s: Socket | null = null;
  try {
    s = await rawAgent(port, { name: 'probe', key: KEYS.probe, localAddress, hello: Feature.FLOW | Feature.PONG });
    const sock = s;
    const ok = await new Promise<string | null>((resolve) => {
      const timer = setTimeout(() => resolve(`no HELLO within ${timeoutMs} ms`), timeoutMs);
      frameReader(sock, (f) => {
        if (f.type === FrameType.CMD && f.command === Command.HELLO) { clearTimeout(timer); resolve(null); }
      });
      sock.once('close', () => { clearTimeout(timer); resolve('the gateway closed the connection'); });
    });
    return { ok: ok === null, ms: Date.now() - t0, detail: ok ?? 'HELLO received' };
  } catch (e) {
    return { ok: false, ms: Date.now() - t0, detail: (e as Error).message };
  } finally {
    s?.destroy();
  }
}

/**
 * Writes `chunk()` to `s` as fast as it drains, until `stop()`, `maxMs`, or the socket closes.
 * Returns the bytes written and why it stopped.
 */
export async function flood(s: Socket, chunk: () => Buffer, stop: () => boolean, maxMs: number): Promise<{ bytes: number; ms: number; why: string }> {
  const t0 = Date.now();
  let bytes = 0;
  const closed = event(s, 'close').then(() => 'closed');
  for (;;) {
    if (s.destroyed) return { bytes, ms: Date.now() - t0, why: 'the peer closed the connection' };
    if (stop()) return { bytes, ms: Date.now() - t0, why: 'stopped (cap reached or process gone)' };
    if (Date.now() - t0 > maxMs) return { bytes, ms: Date.now() - t0, why: `time limit ${maxMs} ms` };
    const c = chunk();
    bytes += c.length;
    if (!s.write(c)) {
      const r = await Promise.race([event(s, 'drain').then(() => 'drain'), closed, sleep(200).then(() => 'wait')]);
      if (r === 'closed') return { bytes, ms: Date.now() - t0, why: 'the peer closed the connection' };
    }
  }
}

/** Formats "80 → 95 MiB (+15, bound +128)". */
export function rssText(before: number, peak: number, after: number): string {
  const f = (n: number): string => (Number.isNaN(n) ? 'gone' : n.toFixed(0));
  return `${f(before)} → peak ${f(peak)}, after ${f(after)} MiB (+${f(peak - before)}, bound +${RSS_BOUND_MIB})`;
}

// ------------------------------------------------------------------ one attack, measured

export interface Measured {
  /** RSS in MiB per process label: before the attack, the peak during it, and after it. */
  rss: Record<string, { before: number; peak: number; after: number }>;
  legit: Transfer | null;
  probe: { ok: boolean; ms: number; detail: string } | null;
  /** What the attack itself reports (how much it sent, why it stopped). */
  attack: string;
  ms: number;
}

/**
 * Runs `attack` (which must stop when its `stop()` says so: a process grew by ATTACK_CAP_MIB or
 * died) while sampling the RSS of `procs`; `legitAfterMs` into it, a legitimate client moves data
 * through the real agent and a legitimate agent logs in. Prints and returns every figure.
 */
export async function underAttack(name: string, o: {
  procs: Record<string, Proc>;
  attack: (stop: () => boolean) => Promise<string>;
  legit?: { gw: Gateway; echoPort: number } | null;
  probe?: Gateway | null;
  legitAfterMs?: number;
}): Promise<Measured> {
  const labels = Object.keys(o.procs);
  const pids = labels.map((l) => o.procs[l]!.pid);
  const watch = new RssWatch(pids);
  const t0 = Date.now();
  const attack = o.attack(() => watch.tripped);
  await Promise.race([sleep(o.legitAfterMs ?? 1000), attack]);
  const legit = o.legit ? await legitTransfer(o.legit.gw, o.legit.echoPort, 4 * MiB, 10_000) : null;
  const probe = o.probe ? await probeLogin(o.probe.servPort) : null;
  let what: string;
  try {
    what = await attack;
  } catch (e) {
    what = `attack failed: ${(e as Error).message}`;
  }
  const ms = Date.now() - t0;
  await sleep(300);
  watch.stop();
  const rss: Measured['rss'] = {};
  labels.forEach((l, i) => {
    const pid = pids[i]!;
    const after = rssMiB(pid);
    rss[l] = { before: watch.base.get(pid)!, peak: Math.max(watch.peak.get(pid)!, Number.isNaN(after) ? 0 : after), after };
    const r = rss[l];
    report(name, `${l} RSS ${rssText(r.before, r.peak, r.after)}${o.procs[l]!.alive() ? '' : ' — the process DIED'}`, { what: `${l}_rss`, ...r, alive: o.procs[l]!.alive() });
  });
  report(name, `attack: ${what} (${ms} ms)`, { what: 'attack', detail: what, ms });
  if (legit) report(name, `legitimate transfer: ${legit.ok ? 'ok' : 'FAILED'}, ${legit.bytes} bytes in ${legit.ms} ms (${legit.detail})`, { what: 'legit', ...legit });
  if (probe) report(name, `legitimate agent login from 127.0.0.9: ${probe.ok ? 'ok' : 'FAILED'} in ${probe.ms} ms (${probe.detail})`, { what: 'probe', ...probe });
  return { rss, legit, probe, attack: what, ms };
}

/** Asserts the RSS bound, the legitimate transfer and login of a measured attack, naming the attack and the numbers. */
export function assertHeld(name: string, m: Measured, procs: Record<string, Proc>): void {
  const problems: string[] = [];
  for (const [l, r] of Object.entries(m.rss)) {
    if (!procs[l]!.alive()) problems.push(`${l} died (exit code ${procs[l]!.exitCode()}; its last log: ${procs[l]!.errTail().slice(-300)})`);
    else if (!(r.peak - r.before <= RSS_BOUND_MIB)) problems.push(`${l} RSS ${r.before.toFixed(0)} → ${r.peak.toFixed(0)} MiB (+${(r.peak - r.before).toFixed(0)}, bound +${RSS_BOUND_MIB})`);
  }
  if (m.legit && !m.legit.ok) problems.push(`the legitimate transfer failed: ${m.legit.detail}`);
  if (m.probe && !m.probe.ok) problems.push(`a legitimate agent could not log in: ${m.probe.detail}`);
  if (problems.length > 0) throw new Error(`attack ${name}: ${problems.join('; ')} [attack: ${m.attack}]`);
}
