import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { Agent } from '../../src/agent/agent.ts';
import { DEFAULT_MAX_QUEUED } from '../../src/mux/mux.ts';
import {
  Command, Decoder, encodeCmd, encodeHello, encodeOpn, encodePortQuery, FrameType, ipToBytes, PROTOCOL_VERSION, type Frame,
} from '../../src/protocol/index.ts';
import { HANDSHAKE_SIZE } from '../../src/auth/handshake.ts';
import { silentLogger } from '../../src/util/log.ts';
import { agentConfig } from '../helpers/stack.ts';
import { listen, waitFor } from '../helpers/net.ts';
import { liveHeap } from '../helpers/hostile.ts';

/**
 * A fake gateway that accepts a real (plain-mode) agent, answers its HELLO, and then does what a
 * compromised or broken gateway might: flood PINGs or OPNs while never reading. The agent must
 * stop reading it rather than buffer its answers, and refuse sessions beyond max_sessions.
 */
const MiB = 2 ** 20;
const ONE_READ = 64 * 1024;

interface Fake {
  port: number;
  conn: Promise<{ socket: Socket; frames: Frame[] }>;
  close(): void;
}

async function fakeGateway(): Promise<Fake> {
  let resolve!: (c: { socket: Socket; frames: Frame[] }) => void;
  const conn = new Promise<{ socket: Socket; frames: Frame[] }>((r) => { resolve = r; });
  const sockets: Socket[] = [];
  const srv = await listen((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    const frames: Frame[] = [];
    const dec = new Decoder();
    let head = Buffer.alloc(0);
    let greeted = false;
    s.on('data', (c: Buffer) => {
      if (!greeted) {
        head = Buffer.concat([head, c]);
        if (head.length < HANDSHAKE_SIZE) return;
        greeted = true;
        c = head.subarray(HANDSHAKE_SIZE);
        s.write(encodeCmd(0, Command.HELLO, encodeHello({ version: PROTOCOL_VERSION, features: 7, window: 256 * 1024 })));
        resolve({ socket: s, frames });
      }
      dec.push(c, (f) => frames.push(f));
    });
  });
  return { port: srv.port, conn, close() { for (const s of sockets) s.destroy(); srv.server.close(); } };
}

async function startAgent(port: number, over: Record<string, unknown> = {}): Promise<Agent> {
  // keepalive 10: the agent's dead-link timer (3 × keepalive) does not end the link mid-measurement.
  const a = new Agent(agentConfig(port, { plain: true, keepalive: 10, ...over }), silentLogger);
  a.start();
  await waitFor(() => a.mux?.features !== undefined && a.mux.features !== 0, 5000, 'agent HELLO exchanged');
  return a;
}

/** Writes what make() returns until the agent stops reading (plus a second) or maxMs passes. */
async function floodUntilStopped(s: Socket, make: () => Buffer, stopped: () => boolean, maxMs = 10_000): Promise<number> {
  const t0 = Date.now();
  let since = 0;
  let sent = 0;
  while (Date.now() - t0 < maxMs && !s.destroyed) {
    const b = make();
    sent += b.length;
    // An agent that stopped reading never drains: stopped() is looked at again every 100 ms.
    if (!s.write(b)) await Promise.race([new Promise((r) => s.once('drain', r)), new Promise((r) => setTimeout(r, 100))]);
    if (!stopped()) since = 0;
    else if (since === 0) since = Date.now();
    else if (Date.now() - since > 1000) break;
  }
  assert.ok(since > 0, 'the agent stopped reading the gateway');
  return sent;
}

test('a gateway that floods 8 KiB PINGs and never reads: the agent stops reading it; its PONG backlog stays under the bound', async (t) => {
  const fake = await fakeGateway();
  const ag = await startAgent(fake.port);
  t.after(async () => { await ag.stop(); fake.close(); });
  const { socket } = await fake.conn;
  socket.pause();
  const mux = ag.mux!;
  let peak = 0;
  const sampler = setInterval(() => { peak = Math.max(peak, mux.queued); }, 5);
  const ping = encodeCmd(0, Command.PING, Buffer.alloc(8000));
  const burst = Buffer.concat(Array.from({ length: 8 }, () => ping));
  const rss0 = process.memoryUsage().rss;
  const heap0 = await liveHeap();
  const sent = await floodUntilStopped(socket, () => burst, () => mux.readStopped);
  clearInterval(sampler);
  peak = Math.max(peak, mux.queued);
  const heap = (await liveHeap()) - heap0;
  console.log(`# agent, 8 KiB PING flood: sent ${(sent / MiB).toFixed(2)} MiB; agent queued at most ${(peak / MiB).toFixed(2)} MiB (bound ${((DEFAULT_MAX_QUEUED + ONE_READ) / MiB).toFixed(2)} MiB); RSS +${((process.memoryUsage().rss - rss0) / MiB).toFixed(1)} MiB, live heap ${(heap / MiB).toFixed(2)} MiB`);
  assert.ok(heap < 32 * MiB, `live heap grew ${heap}`);
  assert.ok(peak <= DEFAULT_MAX_QUEUED + ONE_READ, `queued ${peak}`);
  assert.equal(mux.closed, false, 'the link stays up: the agent only stopped reading');
});

test('a gateway that floods OPNs and never reads: at most max_sessions targets dialled, the rest refused, answers bounded', async (t) => {
  const held: Socket[] = [];
  const target = await listen((s) => { s.on('error', () => undefined); held.push(s); });
  const fake = await fakeGateway();
  const ag = await startAgent(fake.port, { max_sessions: 16 });
  t.after(async () => { await ag.stop(); fake.close(); target.server.close(); for (const s of held) s.destroy(); });
  const { socket } = await fake.conn;
  socket.pause();
  const mux = ag.mux!;
  let peak = 0;
  let peakSessions = 0;
  const sampler = setInterval(() => { peak = Math.max(peak, mux.queued); peakSessions = Math.max(peakSessions, mux.sessions.size); }, 5);
  let id = 1;
  const ip = ipToBytes('127.0.0.1');
  const burst = (): Buffer => Buffer.concat(Array.from({ length: 1000 }, () => encodeOpn(id++, target.port, ip)));
  const sent = await floodUntilStopped(socket, burst, () => mux.readStopped);
  clearInterval(sampler);
  console.log(`# agent, OPN flood: ${id - 1} OPNs (${(sent / MiB).toFixed(2)} MiB); sessions at most ${peakSessions}, targets dialled ${held.length}, refused ${ag.sessionCapRefused}; agent queued at most ${(peak / MiB).toFixed(2)} MiB`);
  assert.ok(peakSessions <= 16, `${peakSessions} sessions`);
  assert.ok(held.length <= 16, `${held.length} target connections`);
  // OPNs still in the kernel's buffers or unread by the agent are neither accepted nor refused.
  assert.ok(ag.sessionCapRefused > 0, 'OPNs beyond the cap refused');
  assert.ok(peak <= DEFAULT_MAX_QUEUED + ONE_READ, `queued ${peak}`);
});

test('agent session cap: the (max_sessions+1)th OPN is answered with CLS, the first ones stay open; a PORT QUERY beyond two at once is refused', async (t) => {
  const held: Socket[] = [];
  const target = await listen((s) => { s.on('error', () => undefined); held.push(s); });
  const fake = await fakeGateway();
  const ag = await startAgent(fake.port, { max_sessions: 3, lan_nets: ['127.0.0.0/30'], scan_timeout: 2 });
  t.after(async () => { await ag.stop(); fake.close(); target.server.close(); for (const s of held) s.destroy(); });
  const { socket, frames } = await fake.conn;
  const ip = ipToBytes('127.0.0.1');
  for (let i = 1; i <= 4; i++) socket.write(encodeOpn(i, target.port, ip));
  await waitFor(() => frames.some((f) => f.type === FrameType.CLS && f.session === 4), 5000, 'CLS for the fourth session');
  await waitFor(() => held.length === 3, 5000, 'three targets dialled');
  // The point: no further CLS (a first session dropped) within 200 ms; nothing to wait for.
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(frames.filter((f) => f.type === FrameType.CLS).map((f) => f.session), [4]);
  assert.equal(ag.sessionCapRefused, 1);
  // Three PORT QUERYs at once towards a port nobody listens on (the scans run their timeout):
  // the agent scans two at a time and refuses the third at once.
  // In one write, so the agent reads them together and two scans are running when the third arrives.
  socket.write(Buffer.concat([1, 2, 3].map((i) => encodeCmd(100 + i, Command.PORT_QUERY, encodePortQuery(9)))));
  await waitFor(() => frames.some((f) => f.type === FrameType.CMD && f.id === 103), 5000, 'answer to the third query');
  const third = frames.find((f) => f.type === FrameType.CMD && f.id === 103);
  assert.ok(third && third.type === FrameType.CMD && (third.params[0]! & 2) !== 0, 'refused flag');
});
