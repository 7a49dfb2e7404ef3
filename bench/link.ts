/**
 * Link benchmark: the link library's throughput against plain TCP on loopback in the same run,
 * small-message round trips (wall time and CPU per round trip, both ends in this process, so the
 * figure is the link's own cost per record without other processes' wakeups), and resume latency
 * (connection dropped → new connection attached) p50/p99.
 * Usage: npm run bench:link [-- --size MiB --resumes N --round-trips N]
 */
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { COMPAT_DATA, connectLink, generateKeyPair, LinkServer, MAX_DATA, type LinkStream } from '../src/link/index.ts';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const SIZE = arg('--size', 512) * 2 ** 20;
const RESUMES = arg('--resumes', 200);
const ROUND_TRIPS = arg('--round-trips', 20_000);
const MESSAGE = Buffer.alloc(100, 0x61);
const CHUNK = Buffer.alloc(256 * 1024, 0x42);

async function pump(s: Duplex, total: number): Promise<void> {
  for (let sent = 0; sent < total; sent += CHUNK.length) if (!s.write(CHUNK)) await once(s, 'drain');
  s.end();
}
function drain(s: Duplex): Promise<void> {
  s.resume();
  return once(s, 'end').then(() => undefined);
}
const mibps = (ms: number): number => SIZE / 2 ** 20 / (ms / 1000);

async function tcpPair(): Promise<{ c: Socket; s: Socket; close: () => void }> {
  let accepted: Socket | null = null;
  const server = createServer({ noDelay: true }, (s) => { accepted = s; });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const c = connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port, noDelay: true });
  await once(c, 'connect');
  while (!accepted) await new Promise((r) => setImmediate(r));
  return { c, s: accepted as Socket, close: () => { c.destroy(); server.close(); } };
}

async function plainTcp(): Promise<number> {
  const { c, s, close } = await tcpPair();
  void drain(s).then(() => s.end());
  const t0 = performance.now();
  c.resume();
  await Promise.all([pump(c, SIZE), once(c, 'end')]);
  const ms = performance.now() - t0;
  close();
  return mibps(ms);
}

interface RoundTrips {
  wallUs: number;
  cpuUs: number;
}

/** One 100-byte message at a time from a to b and back (b echoes); µs per round trip. */
async function roundTrips(a: Duplex, b: Duplex): Promise<RoundTrips> {
  b.on('data', (d: Buffer) => b.write(d));
  let have = 0;
  let wake: () => void = () => undefined;
  a.on('data', (d: Buffer) => {
    have += d.length;
    if (have >= MESSAGE.length) { have -= MESSAGE.length; wake(); }
  });
  const one = (): Promise<void> => new Promise((r) => { wake = r; a.write(MESSAGE); });
  for (let i = 0; i < 1000; i++) await one(); // warm-up
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < ROUND_TRIPS; i++) await one();
  const cpu = process.cpuUsage(c0);
  return { wallUs: (performance.now() - t0) * 1000 / ROUND_TRIPS, cpuUs: (cpu.user + cpu.system) / ROUND_TRIPS };
}

async function plainTcpRoundTrips(): Promise<RoundTrips> {
  const { c, s, close } = await tcpPair();
  const r = await roundTrips(c, s);
  close();
  return r;
}

async function linkPair(recordData?: number): Promise<{ c: LinkStream; s: LinkStream; close: () => void }> {
  const key = generateKeyPair();
  let serverStream: LinkStream | null = null;
  const ls = new LinkServer({ key, onStream: (s) => { serverStream = s; }, ...(recordData ? { recordData } : {}) });
  const server = createServer((sock: Socket) => ls.handle(sock, Buffer.alloc(0)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const c = await connectLink({ host: '127.0.0.1', port, serverKey: key.publicRaw, ...(recordData ? { recordData } : {}) });
  while (!serverStream) await new Promise((r) => setImmediate(r));
  return { c, s: serverStream as LinkStream, close: () => { c.destroy(); ls.close(); server.close(); } };
}

/**
 * Writes shaped as the mux makes them: one 64 KiB socket read becomes 9 DAT frames (8185-byte
 * payloads, 6-byte headers: 65,590 bytes) written as 18 buffers in one corked write. Each read is
 * written once the previous one has arrived, as when the local socket, not the link, is the
 * bottleneck: the link never has a backlog to pack into full records, so each read is sealed on
 * its own — as one record, or as two when a record carries at most 64 KiB.
 */
const READ = 64 * 1024;
const FRAME = 8185;
const SHAPED_READS = 4000;
async function linkMuxShaped(recordData?: number): Promise<{ mibps: number; cpuUsPerRead: number; recordsPerRead: number }> {
  const { c, s, close } = await linkPair(recordData);
  const payload = Buffer.alloc(READ, 0x43);
  const header = Buffer.alloc(6, 0x01);
  const perRead = READ + Math.ceil(READ / FRAME) * 6;
  let got = 0;
  let want = 0;
  let wake: () => void = () => undefined;
  s.on('data', (d: Buffer) => { got += d.length; if (got >= want) wake(); });
  const one = (): Promise<void> => new Promise((r) => {
    want += perRead;
    wake = r;
    c.cork();
    for (let off = 0; off < READ; off += FRAME) {
      c.write(header);
      c.write(payload.subarray(off, off + FRAME));
    }
    c.uncork();
  });
  for (let i = 0; i < 200; i++) await one(); // warm-up
  const records0 = s.stats.recordsIn;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < SHAPED_READS; i++) await one();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  const records = s.stats.recordsIn - records0;
  close();
  return { mibps: (SHAPED_READS * perRead) / 2 ** 20 / (ms / 1000), cpuUsPerRead: (cpu.user + cpu.system) / SHAPED_READS, recordsPerRead: records / SHAPED_READS };
}

async function linkRoundTrips(): Promise<RoundTrips> {
  const { c, s, close } = await linkPair();
  const r = await roundTrips(c, s);
  close();
  return r;
}

async function link(): Promise<{ up: number; p50: number; p99: number; max: number }> {
  const { c, s, close } = await linkPair();
  // Throughput: client → server, until the server has read every byte.
  let got = 0;
  let all: () => void = () => undefined;
  const arrived = new Promise<void>((r) => { all = r; });
  s.on('data', (d: Buffer) => { got += d.length; if (got >= SIZE) all(); });
  const done = once(s, 'end');
  c.resume();
  const t0 = performance.now();
  for (let n = 0; n < SIZE; n += CHUNK.length) if (!c.write(CHUNK)) await once(c, 'drain');
  await arrived;
  const up = mibps(performance.now() - t0);
  // Resume latency: drop the connection, time until the new one is attached.
  const lat: number[] = [];
  for (let i = 0; i < RESUMES; i++) {
    const t1 = performance.now();
    const attached = once(c, 'attached');
    c.dropConnection('bench');
    await attached;
    lat.push(performance.now() - t1);
    c.write(CHUNK.subarray(0, 1024));
  }
  lat.sort((a, b) => a - b);
  c.end();
  await done;
  close();
  return { up, p50: lat[Math.floor(lat.length * 0.5)]!, p99: lat[Math.floor(lat.length * 0.99)]!, max: lat.at(-1)! };
}

const tcp = await plainTcp();
const l = await link();
const shaped = await linkMuxShaped();
const shapedLarge = await linkMuxShaped(MAX_DATA);
const tcpRt = await plainTcpRoundTrips();
const linkRt = await linkRoundTrips();
console.log(`link benchmark (node ${process.version}, loopback, ${SIZE / 2 ** 20} MiB one way, ${RESUMES} resumes)`);
console.log('| path | MiB/s | vs plain TCP |');
console.log('|---|---:|---:|');
console.log(`| plain TCP | ${tcp.toFixed(0)} | 1.00 |`);
console.log(`| encrypted link (AES-256-GCM, 64 KiB records) | ${l.up.toFixed(0)} | ${(l.up / tcp).toFixed(2)} |`);
console.log(`${SHAPED_READS} mux-shaped reads (a 64 KiB read as 9 DAT frames, 65,590 bytes, the next once it arrived), both ends in this process:`);
console.log('| records | MiB/s | CPU µs per read | records per read |');
console.log('|---|---:|---:|---:|');
for (const [name, r] of [[`≤ ${COMPAT_DATA} bytes (default)`, shaped], [`≤ ${MAX_DATA} bytes (recordData: MAX_DATA)`, shapedLarge]] as const) {
  console.log(`| ${name} | ${r.mibps.toFixed(0)} | ${r.cpuUsPerRead.toFixed(1)} | ${r.recordsPerRead.toFixed(2)} |`);
}
console.log(`${ROUND_TRIPS} round trips of ${MESSAGE.length} bytes, both ends in this process (µs per round trip):`);
console.log('| path | wall | CPU | CPU vs plain TCP |');
console.log('|---|---:|---:|---:|');
console.log(`| plain TCP | ${tcpRt.wallUs.toFixed(1)} | ${tcpRt.cpuUs.toFixed(1)} | 1.00 |`);
console.log(`| encrypted link | ${linkRt.wallUs.toFixed(1)} | ${linkRt.cpuUs.toFixed(1)} | ${(linkRt.cpuUs / tcpRt.cpuUs).toFixed(2)} |`);
console.log(`resume latency: p50 ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms, max ${l.max.toFixed(2)} ms`);
