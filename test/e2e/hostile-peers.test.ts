import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { Command, encodeCmd, encodeHello, encodeOpn, ipToBytes, PROTOCOL_VERSION } from '../../src/protocol/index.ts';
import { DEFAULT_MAX_QUEUED } from '../../src/mux/mux.ts';
import { SOCKET_READ_LIMIT } from '../../src/link/stream.ts';
import { Purpose } from '../../src/connect/protocol.ts';
import { makeHandshake } from '../../src/auth/handshake.ts';
import type { Agent } from '../../src/agent/agent.ts';
import { ADMIN, agent, gateway, KEY, online } from '../helpers/stack.ts';
import { dial, echoServer, hashUntilEnd, http, sendPattern } from '../helpers/net.ts';
import { linkPeer, liveHeap, plainAgent, type HostilePeer } from '../helpers/hostile.ts';

/**
 * Peers that get in (agent handshake, or a dk connect token) and then flood while never reading,
 * against a real gateway in this process. What the gateway holds for such a link is measured
 * directly (its writable buffers, and for the encrypted link every byte the LinkStream holds),
 * sampled every 10 ms, and must stay under the bounds of docs/architecture.md "Backpressure";
 * a legitimate session on the real agent's link meanwhile moves 16 MiB, checked byte for byte.
 */
const MiB = 2 ** 20;
const EVIL_KEY = 'evil-backend-key-0123';
/** A flood goes on until the gateway has stopped reading the attacker for a second, or this long. */
const FLOOD_MAX_MS = 20_000;
/** One read's answers beyond the bound: a socket or record read is at most 64 KiB. */
const ONE_READ = 64 * 1024;
const LINK_WINDOW = 1 * MiB;

type Gw = Awaited<ReturnType<typeof gateway>>;
let gw: Gw;
let ag: Agent;
let echo: Awaited<ReturnType<typeof echoServer>>;
let accessPort: number;

before(async () => {
  // keepalive 5: the gateway's dead-link timer (3 × keepalive) does not end the plain floods
  // before they are measured; link_window small so the dk connect bound is visible.
  gw = await gateway({ backends: { home: { key: KEY }, evil: { key: EVIL_KEY } }, keepalive: 5, link_window: LINK_WINDOW });
  ag = await agent(gw.servPort);
  echo = await echoServer();
  await online(gw);
  const g = await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: echo.port } });
  accessPort = g.json.access_port as number;
});
after(async () => { await ag.stop(); await gw.cleanup(); echo.server.close(); });

/** Bytes the gateway holds for the attacker's connection: its link session, or its plain socket. */
function held(peer: HostilePeer): number {
  let n = 0;
  for (const h of gw.gateway.link.sessions.values()) {
    if (h.stream.remotePort !== peer.socket.localPort) continue;
    n += h.stream.buffered;
    // The dk connect mux's frames gathered while the stream was blocked (queued counts the stream's own queue too).
    const mux = gw.gateway.connectMuxes.get(h.stream) ?? gw.gateway.agents.list().find((a) => a.mux.link === h.stream)?.mux;
    if (mux) n += mux.queued - h.stream.writableLength;
  }
  for (const a of gw.gateway.agents.list()) if (!a.encrypted && (a.mux.link as Socket).remotePort === peer.socket.localPort) n += a.mux.queued;
  return n;
}

/** The gateway's agent link for the attacker's plain socket. */
function plainLink(peer: HostilePeer) {
  return gw.gateway.agents.list().find((a) => !a.encrypted && (a.mux.link as Socket).remotePort === peer.socket.localPort);
}
/** The gateway's link session for the attacker's socket. */
function linkStream(peer: HostilePeer) {
  return [...gw.gateway.link.sessions.values()].find((h) => h.stream.remotePort === peer.socket.localPort)?.stream;
}

/**
 * Floods with `make()` until the gateway has stopped reading the attacker (`stopped`) for a
 * second (at most FLOOD_MAX_MS: the kernel's socket buffers take the first few MiB of answers),
 * beside a 16 MiB echo through the real agent; returns the peak held, the bytes sent, RSS growth.
 */
async function underAttack(peer: HostilePeer, make: () => Buffer, stopped: () => boolean, raw = false): Promise<{ peak: number; sent: number; rss: number; heap: string; ms: number }> {
  const rss0 = process.memoryUsage().rss;
  const heap0 = await liveHeap();
  let peak = 0;
  const sampler = setInterval(() => { peak = Math.max(peak, held(peer)); }, 10);
  const legit = await dial(accessPort);
  const got = hashUntilEnd(legit, 9);
  const t0 = Date.now();
  const attack = async (): Promise<number> => {
    let sent = 0;
    let since = 0;
    while (Date.now() - t0 < FLOOD_MAX_MS && !peer.socket.destroyed) {
      sent += await peer.flood(make, 200, raw);
      if (!stopped()) since = 0;
      else if (since === 0) since = Date.now();
      else if (Date.now() - since > 1000) break;
    }
    assert.ok(since > 0, 'the gateway stopped reading the attacker');
    return sent;
  };
  const [sent, sentHash] = await Promise.all([attack(), sendPattern(legit, 9, 16 * MiB)]);
  const ms = Date.now() - t0;
  const r = await got;
  clearInterval(sampler);
  peak = Math.max(peak, held(peer));
  assert.equal(r.bytes, 16 * MiB, 'the legitimate session moved every byte');
  assert.equal(r.hash, sentHash);
  assert.equal(r.firstBadOffset, -1);
  // Live heap while the attacker is still connected: what the gateway retains for it.
  const heap1 = await liveHeap();
  const heap = `${heap1 - heap0 >= 0 ? '+' : ''}${fmt(heap1 - heap0)}`;
  assert.ok(heap1 - heap0 < 32 * MiB, `live heap grew ${fmt(heap1 - heap0)}`);
  return { peak, sent, rss: process.memoryUsage().rss - rss0, heap, ms };
}

const fmt = (n: number): string => `${(n / MiB).toFixed(2)} MiB`;

test('a plain agent that floods OPN and never reads: every OPN refused with CLS, counted; the CLS backlog stays under the bound', async () => {
  const peer = await plainAgent(gw.servPort, 'evil', EVIL_KEY);
  // Refused OPNs keep no session, so one id may come again: a fixed burst, no garbage per frame.
  const burst = Buffer.concat(Array.from({ length: 1000 }, (_, i) => encodeOpn(i + 1, 22, ipToBytes('127.0.0.1'))));
  const before = (await gw.gateway.metrics.sessionsRefused.get()).values.find((v) => v.labels.reason === 'not_accepted')?.value ?? 0;
  const r = await underAttack(peer, () => burst, () => plainLink(peer)?.mux.readStopped === true);
  const after = (await gw.gateway.metrics.sessionsRefused.get()).values.find((v) => v.labels.reason === 'not_accepted')?.value ?? 0;
  console.log(`# OPN flood: sent ${fmt(r.sent)} in ${r.ms} ms of OPNs; gateway held at most ${fmt(r.peak)} for that link (bound ${fmt(DEFAULT_MAX_QUEUED + ONE_READ)}); refused ${after - before}; RSS ${r.rss >= 0 ? '+' : ''}${fmt(r.rss)}, live heap ${r.heap}`);
  assert.ok(r.peak <= DEFAULT_MAX_QUEUED + ONE_READ, `held ${r.peak}`);
  assert.ok(after - before > 0, 'refusals counted');
  assert.ok(r.rss < 256 * MiB, `RSS grew ${fmt(r.rss)}`);
  peer.close();
});

test('a plain agent that floods 8 KiB PINGs and never reads: the PONG backlog stays under the bound', async () => {
  const peer = await plainAgent(gw.servPort, 'evil', EVIL_KEY);
  const ping = encodeCmd(0, Command.PING, Buffer.alloc(8000));
  const burst = Buffer.concat(Array.from({ length: 8 }, () => ping));
  const r = await underAttack(peer, () => burst, () => plainLink(peer)?.mux.readStopped === true);
  console.log(`# 8 KiB PING flood (plain): sent ${fmt(r.sent)} in ${r.ms} ms; gateway held at most ${fmt(r.peak)} (bound ${fmt(DEFAULT_MAX_QUEUED + ONE_READ)}); RSS ${r.rss >= 0 ? '+' : ''}${fmt(r.rss)}, live heap ${r.heap}`);
  assert.ok(r.peak <= DEFAULT_MAX_QUEUED + ONE_READ, `held ${r.peak}`);
  peer.close();
});

test('a dk connect client that floods 8 KiB PINGs and never acknowledges nor reads: bounded by link_window plus the read bounds', async () => {
  const peer = await linkPeer(gw.servPort, gw.gateway.linkKey.publicRaw, Purpose.CLIENT);
  await peer.send(Buffer.from(JSON.stringify({ token: ADMIN, backend: 'home', port: echo.port, mux: true }) + '\n'));
  await peer.send(encodeCmd(0, Command.HELLO, encodeHello({ version: PROTOCOL_VERSION, features: 7, window: 256 * 1024 })));
  const ping = encodeCmd(0, Command.PING, Buffer.alloc(8000));
  const burst = Buffer.concat(Array.from({ length: 8 }, () => ping));
  // Replay buffer (link_window), the LinkStream's queued writes (mux bound + one read), its
  // readable buffer (256 KiB + a record) and the socket's queue (its bound + one read).
  const bound = LINK_WINDOW + DEFAULT_MAX_QUEUED + ONE_READ + 256 * 1024 + ONE_READ + SOCKET_READ_LIMIT + ONE_READ;
  // The gateway's mux stopped reading the LinkStream (the stream then stops reading its socket).
  const r = await underAttack(peer, () => burst, () => linkStream(peer)?.isPaused() === true);
  console.log(`# dk connect, 8 KiB PINGs, no ACK: sent ${fmt(r.sent)} in ${r.ms} ms; gateway held at most ${fmt(r.peak)} for that link (bound ${fmt(bound)}); RSS ${r.rss >= 0 ? '+' : ''}${fmt(r.rss)}, live heap ${r.heap}`);
  assert.ok(r.peak <= bound, `held ${r.peak}`);
  peer.close();
});

test('an agent on the encrypted link that floods OPN and never acknowledges nor reads: its CLS answers fill the replay buffer as slabs, then the gateway stops reading', async () => {
  const peer = await linkPeer(gw.servPort, gw.gateway.linkKey.publicRaw, Purpose.AGENT);
  await peer.send(makeHandshake('evil', EVIL_KEY));
  await peer.send(encodeCmd(0, Command.HELLO, encodeHello({ version: PROTOCOL_VERSION, features: 7, window: 256 * 1024 })));
  const burst = Buffer.concat(Array.from({ length: 1000 }, (_, i) => encodeOpn(i + 1, 22, ipToBytes('127.0.0.1'))));
  const bound = LINK_WINDOW + DEFAULT_MAX_QUEUED + ONE_READ + 256 * 1024 + ONE_READ + SOCKET_READ_LIMIT + ONE_READ;
  const evil = () => gw.gateway.agents.get('evil');
  const r = await underAttack(peer, () => burst, () => evil()?.encrypted === true && linkStream(peer)?.isPaused() === true);
  console.log(`# encrypted agent, OPN flood, no ACK: sent ${fmt(r.sent)} in ${r.ms} ms; gateway held at most ${fmt(r.peak)} for that link (bound ${fmt(bound)}); RSS ${r.rss >= 0 ? '+' : ''}${fmt(r.rss)}, live heap ${r.heap}`);
  assert.ok(r.peak <= bound, `held ${r.peak}`);
  peer.close();
});

test('a link peer that floods link-layer PINGs and never reads: the PONG records stay under the socket bound', async () => {
  const peer = await linkPeer(gw.servPort, gw.gateway.linkKey.publicRaw, Purpose.AGENT);
  // Sealed afresh each time: a record sent twice fails authentication (and drops the connection).
  const burst = (): Buffer => Buffer.concat(Array.from({ length: 200 }, () => peer.linkPing!()));
  const bound = SOCKET_READ_LIMIT + ONE_READ;
  const r = await underAttack(peer, burst, () => linkStream(peer)?.readStopped === true, true);
  console.log(`# link PING flood: sent ${fmt(r.sent)} in ${r.ms} ms; gateway held at most ${fmt(r.peak)} (bound ${fmt(bound)}); RSS ${r.rss >= 0 ? '+' : ''}${fmt(r.rss)}, live heap ${r.heap}`);
  assert.ok(r.peak <= bound, `held ${r.peak}`);
  peer.close();
});
