/**
 * Core benchmark: measures, in one run on loopback, a direct TCP connection (the ceiling), a plain
 * Node pipe relay (the ceiling for a userspace relay in Node), DoorKeeper over the plain DK link,
 * over the encrypted link, and `dk connect` (gateway, agents and dk connect as separate
 * processes). Prints figures and ratios; asserts nothing.
 * Usage: npm run bench [-- --size MiB]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const sizeArg = process.argv.indexOf('--size');
const SIZE = (sizeArg > 0 ? Number(process.argv[sizeArg + 1]) : 256) * 2 ** 20;
const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const RELAY = fileURLToPath(new URL('./relay.ts', import.meta.url));
const CHUNK = Buffer.alloc(256 * 1024, 0x5a);
const children: ChildProcess[] = [];

/** Target: first byte selects the mode — 'U' sink (upload), 'D' source (download), 'E' echo. */
async function target(): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
    s.on('error', () => undefined);
    s.once('data', (first: Buffer) => {
      const mode = String.fromCharCode(first[0]!);
      if (mode === 'U') { s.on('data', () => undefined); s.on('end', () => s.end('k')); s.resume(); }
      else if (mode === 'D') void pump(s, SIZE).then(() => s.end());
      else { if (first.length > 1) s.write(first.subarray(1)); s.pipe(s); }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port };
}

async function pump(s: Socket, total: number): Promise<void> {
  for (let sent = 0; sent < total; sent += CHUNK.length) if (!s.write(CHUNK)) await once(s, 'drain');
}

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, noDelay: true, allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

async function upload(port: number, bytes: number): Promise<void> {
  const s = await dial(port);
  s.resume(); // read the target's one-byte answer, so that 'end' can arrive
  s.write('U');
  await pump(s, bytes);
  s.end();
  await once(s, 'end');
  s.destroy();
}

async function download(port: number): Promise<void> {
  const s = await dial(port);
  s.write('D');
  s.resume();
  await once(s, 'end');
  s.destroy();
}

async function rtt(port: number, n: number): Promise<number[]> {
  const s = await dial(port);
  s.write('E');
  const times: number[] = [];
  const one = Buffer.from([1]);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    s.write(one);
    await once(s, 'data');
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  s.destroy();
  return times.sort((a, b) => a - b);
}

async function connRate(port: number, total: number, concurrency: number): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next++ < total) {
      const s = await dial(port);
      s.write('E\x01');
      await once(s, 'data');
      s.destroy();
    }
  }));
  return total / ((performance.now() - t0) / 1000);
}

const mibps = (bytes: number, ms: number): number => bytes / 2 ** 20 / (ms / 1000);
async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

interface Row { name: string; up: number; down: number; par8: number; p50: number; p99: number; conns: number }

async function measure(name: string, port: number): Promise<Row> {
  await upload(port, 16 * 2 ** 20); // warm-up
  const up = mibps(SIZE, await timed(() => upload(port, SIZE)));
  const down = mibps(SIZE, await timed(() => download(port)));
  const par8 = mibps(SIZE, await timed(() => Promise.all(Array.from({ length: 8 }, () => upload(port, SIZE / 8)))));
  const r = await rtt(port, 2000);
  const conns = await connRate(port, 2000, 32);
  const row = { name, up, down, par8, p50: r[Math.floor(r.length * 0.5)]!, p99: r[Math.floor(r.length * 0.99)]!, conns };
  process.stderr.write(`  measured ${name}\n`);
  return row;
}

function start(args: string[], ready: RegExp, stream: 'stdout' | 'stderr' = 'stdout'): Promise<ChildProcess> {
  const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(p);
  return new Promise((resolve, reject) => {
    let buf = '';
    p[stream].on('data', (c: Buffer) => { buf += c.toString(); if (ready.test(buf)) resolve(p); });
    p.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}: ${buf}`)));
  });
}

async function main(): Promise<void> {
  const t = await target();
  // Below the ephemeral range (32768+), where client sockets take their local ports.
  const base = 21_000 + Math.floor(Math.random() * 10_000);
  const data = mkdtempSync(join(tmpdir(), 'dk-bench-'));
  try {
    process.stderr.write(`DoorKeeper core benchmark: ${SIZE / 2 ** 20} MiB per transfer, node ${process.version}\n`);
    await start([RELAY, String(base), String(t.port)], /ready/);
    const token = 'bench-admin-token-0123456789';
    await start([MAIN, 'gateway', '--bind', '127.0.0.1', '--serv-port', String(base + 1), '--mgmt-port', String(base + 2), '--data-dir', data,
      '--backend', 'bench=bench-key-123', '--backend', 'benchlink=bench-key-456', '--admin-token', token], /DoorKeeper gateway/);
    const pub = execFileSync(process.execPath, [MAIN, 'pubkey', '--data-dir', data], { encoding: 'utf8' }).trim();
    await start([MAIN, 'agent', '--gateway', `127.0.0.1:${base + 1}`, '--name', 'bench', '--key', 'bench-key-123', '--allow', '127.0.0.1/32', '--plain'], /connected to gateway/, 'stderr');
    await start([MAIN, 'agent', '--gateway', `127.0.0.1:${base + 1}`, '--name', 'benchlink', '--key', 'bench-key-456', '--allow', '127.0.0.1/32', '--gateway-key', pub], /connected to gateway/, 'stderr');
    await new Promise((r) => setTimeout(r, 300));
    const access = async (backend: string): Promise<number> => {
      const res = await fetch(`http://127.0.0.1:${base + 2}/api/v1/access`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ backend, port: t.port }) });
      return ((await res.json()) as { access_port: number }).access_port;
    };
    await start([MAIN, 'connect', 'benchlink', String(t.port), '-L', `127.0.0.1:${base + 3}`, '--gateway', `127.0.0.1:${base + 1}`, '--gateway-key', pub, '--token', token], /dk connect:/);
    const rows = [await measure('direct TCP', t.port), await measure('node pipe relay', base), await measure('DoorKeeper plain link', await access('bench')),
      await measure('DoorKeeper encrypted link', await access('benchlink')), await measure('dk connect (encrypted both hops)', base + 3)];
    const [direct, relay] = rows as [Row, Row, Row];
    const f = (x: number): string => x.toFixed(0).padStart(7);
    const g = (x: number): string => x.toFixed(3).padStart(7);
    console.log(`\n| contender | up MiB/s | down MiB/s | 8 streams MiB/s | RTT p50 ms | RTT p99 ms | conn/s | up vs relay | up vs direct |`);
    console.log(`|---|---:|---:|---:|---:|---:|---:|---:|---:|`);
    for (const r of rows) {
      console.log(`| ${r.name} | ${f(r.up)} | ${f(r.down)} | ${f(r.par8)} | ${g(r.p50)} | ${g(r.p99)} | ${f(r.conns)} | ${(r.up / relay.up).toFixed(2)} | ${(r.up / direct.up).toFixed(2)} |`);
    }
  } finally {
    for (const c of children) c.kill('SIGTERM');
    t.server.close();
    await new Promise((r) => setTimeout(r, 200));
    rmSync(data, { recursive: true, force: true });
  }
}

await main();
