import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { duplexPair } from 'node:stream';
import { test } from 'node:test';
import { Mux, SessionLimitError, type RefuseReason } from '../../src/mux/mux.ts';
import type { MuxSession } from '../../src/mux/session.ts';
import { Command, encodeCmd, encodeHello, encodeOpn, ipToBytes, PROTOCOL_VERSION } from '../../src/protocol/index.ts';
import { pair, recorder, until } from './helpers.ts';

const LIMIT = 64 * 1024;

/**
 * A mux whose peer writes raw frames and never reads: `peer` is the other end of an in-memory
 * pair. Frames written by the mux stay in its link's writable buffer (duplexPair completes a
 * write only when the other side reads).
 */
function facingNonReader(init: { maxQueued?: number; maxSessions?: number; onRefuse?: (r: RefuseReason) => void; role?: 'gateway' | 'agent' } = {}) {
  const [x, peer] = duplexPair();
  const mux = new Mux(x, { role: init.role ?? 'gateway', keepaliveMs: 0, maxQueued: init.maxQueued ?? LIMIT, ...init });
  peer.pause();
  // Our HELLO (the gateway answers the peer's): PONG negotiated.
  peer.write(encodeCmd(0, Command.HELLO, encodeHello({ version: PROTOCOL_VERSION, features: 7, window: 256 * 1024 })));
  return { mux, x, peer };
}

/**
 * Writes frames from the peer until its writes are refused (the mux stopped reading) or `max` is
 * reached. After a refused write the mux either reads on (the write drains) or stops reading.
 */
async function flood(mux: Mux, peer: ReturnType<typeof duplexPair>[1], frame: (i: number) => Buffer, max: number): Promise<number> {
  let i = 0;
  while (i < max) {
    const ok = peer.write(frame(i++)); // a write that returns false is still taken
    if (!ok) {
      await until(() => !peer.writableNeedDrain || mux.readStopped, 'the mux to read on or stop reading');
      if (peer.writableNeedDrain) break;
    }
  }
  return i;
}

test('a peer that floods 8 KiB PINGs and never reads: the mux stops reading once its answers exceed the bound', async () => {
  const { mux, peer } = facingNonReader();
  const ping = encodeCmd(0, Command.PING, Buffer.alloc(8000));
  const sent = await flood(mux, peer, () => ping, 10_000);
  assert.ok(sent < 10_000, `the peer's writes were refused after ${sent} PINGs`);
  assert.equal(mux.readStopped, true, 'reading stopped');
  // At most the bound plus the answers to one read (a chunk of the peer's writes).
  assert.ok(mux.queued <= LIMIT + 64 * 1024, `queued ${mux.queued} bytes`);
  // The peer reads again: the PONGs drain, reading resumes, and every PING is answered.
  let pongs = 0;
  let rest = Buffer.alloc(0);
  peer.on('data', (c: Buffer) => {
    rest = Buffer.concat([rest, c]);
    while (rest.length >= 6) {
      const len = ((rest[0]! & 0x1f) << 8) | rest[1]!;
      if (rest.length < len) break;
      if (rest[0]! >> 6 === 3 && rest[6] === Command.PONG) pongs++;
      rest = rest.subarray(len);
    }
  });
  peer.resume();
  await until(() => pongs >= sent && !mux.readStopped, 'every PONG');
  assert.equal(mux.readStopped, false, 'reading resumed after drain');
  assert.equal(pongs, sent, 'every PING answered once the peer read');
  mux.destroy();
});

test('a peer that floods OPNs to a side that accepts none: refused with CLS, counted, and the CLS backlog stays bounded', async () => {
  const reasons: RefuseReason[] = [];
  const { mux, x, peer } = facingNonReader({ onRefuse: (r) => reasons.push(r) });
  const ip = ipToBytes('127.0.0.1');
  const burst = (i: number): Buffer => Buffer.concat(Array.from({ length: 100 }, (_, j) => encodeOpn(i * 100 + j + 1, 22, ip)));
  await flood(mux, peer, burst, 100_000);
  assert.equal(mux.readStopped, true);
  assert.ok(mux.queued <= LIMIT + 64 * 1024, `queued ${mux.queued} bytes`);
  // Past the link's mark the CLS frames are gathered in one buffer, not queued one by one.
  assert.ok(x.writableLength <= x.writableHighWaterMark + 6, `link queue ${x.writableLength} bytes`);
  assert.equal(mux.sessions.size, 0, 'no session objects kept for refused OPNs');
  assert.ok(reasons.length > 0 && reasons.every((r) => r === 'not_accepted'));
  mux.destroy();
});

test('session cap: the (cap+1)th OPN is refused with CLS and counted; open() beyond the cap throws', async () => {
  const refused: RefuseReason[] = [];
  const p = pair({ maxSessions: 2 }, { maxSessions: 3, onRefuse: (r) => refused.push(r) });
  const { g, a, opened } = p;
  await p.negotiated();
  const sessions: MuxSession[] = [];
  const records = [];
  for (let i = 0; i < 2; i++) {
    const s = g.open(22, '127.0.0.1');
    const r = recorder();
    s.attach(r, () => undefined);
    sessions.push(s);
    records.push(r);
  }
  assert.throws(() => g.open(22, '127.0.0.1'), SessionLimitError, 'the opener holds its own cap');
  await until(() => opened.length >= 2, 'both OPNs');
  await p.roundTrip();
  assert.equal(opened.length, 2);
  // A third and fourth OPN from a peer with a higher cap of its own: the agent's cap is 3.
  const g2 = pair({ maxSessions: 10 }, { maxSessions: 3, onRefuse: (r) => refused.push(r) });
  await g2.negotiated();
  const s2: { s: MuxSession; r: ReturnType<typeof recorder> }[] = [];
  for (let i = 0; i < 4; i++) {
    const s = g2.g.open(22, '127.0.0.1');
    const r = recorder();
    s.attach(r, () => undefined);
    s2.push({ s, r });
  }
  await until(() => s2[3]!.r.reason !== null || g2.opened.length > 3, 'the CLS for the fourth');
  await g2.roundTrip(); // a CLS for any of the first three would be in by now
  assert.equal(g2.opened.length, 3, 'three accepted');
  assert.equal(s2[3]!.r.reason, 'remote', 'the fourth was closed by the peer (CLS)');
  assert.deepEqual(s2.slice(0, 3).map((x) => x.r.reason), [null, null, null], 'the first three stay open');
  assert.deepEqual(refused, ['session_cap']);
  // Once one ends, a new one fits again.
  s2[0]!.s.close();
  await g2.roundTrip(); // the agent has read the CLS
  const again = g2.g.open(22, '127.0.0.1');
  const ra = recorder();
  again.attach(ra, () => undefined);
  await until(() => g2.opened.length >= 4, 'the new OPN');
  await g2.roundTrip(); // a CLS answering it would be in by now
  assert.equal(g2.opened.length, 4);
  assert.equal(ra.reason, null);
  g.destroy(); a.destroy(); g2.g.destroy(); g2.a.destroy();
});

test('two honest muxes moving bulk data both ways on many sessions never stop reading each other', async () => {
  // The limit a tenth of the default: honest traffic still stays under it (docs/protocol.md).
  const limit = 512 * 1024;
  const p = pair({ maxQueued: limit, window: 64 * 1024 }, { maxQueued: limit, window: 64 * 1024 });
  const { g, a, opened } = p;
  await p.negotiated();
  const N = 32;
  const PER = 512 * 1024;
  const hash = (b: Buffer[]): string => createHash('sha256').update(Buffer.concat(b)).digest('hex');
  const sent = { g: [] as string[], a: [] as string[] };
  /** What each side's session i received. */
  const got = { g: [] as Buffer[][], a: [] as Buffer[][] };
  const gs: MuxSession[] = [];
  for (let i = 0; i < N; i++) gs.push(g.open(22, '127.0.0.1'));
  await until(() => opened.length === N, 'every OPN');
  let stopped = false;
  let peak = 0;
  for (const link of [g.link, a.link]) {
    const write = link.write.bind(link) as (b: Buffer) => boolean;
    link.write = ((b: Buffer) => {
      const ok = write(b);
      peak = Math.max(peak, link.writableLength);
      stopped ||= g.readStopped || a.readStopped;
      return ok;
    }) as typeof link.write;
  }
  let complete = 0;
  const pump = (s: MuxSession, out: string[], into: Buffer[][], i: number): void => {
    const chunks: Buffer[] = [];
    into[i] = chunks;
    let n = 0;
    s.attach({ data: (b) => { chunks.push(b); n += b.length; s.consumed(n); if (n === PER) complete++; }, end: () => undefined, close: () => undefined }, () => undefined);
    const data = randomBytes(PER);
    out[i] = createHash('sha256').update(data).digest('hex');
    for (let off = 0; off < PER; off += 16 * 1024) s.write(data.subarray(off, off + 16 * 1024));
    s.end();
  };
  assert.deepEqual(opened.map((s) => s.id), gs.map((s) => s.id), 'sessions pair up in order');
  gs.forEach((s, i) => pump(s, sent.g, got.g, i));
  opened.forEach((s, i) => pump(s, sent.a, got.a, i));
  await until(() => complete === 2 * N, 'every session to deliver both ways', 60_000);
  for (let i = 0; i < N; i++) {
    assert.equal(hash(got.a[i]!), sent.g[i], `session ${i} gateway → agent`);
    assert.equal(hash(got.g[i]!), sent.a[i], `session ${i} agent → gateway`);
    assert.equal(Buffer.concat(got.a[i]!).length, PER);
  }
  console.log(`# ${N} sessions × ${PER / 1024} KiB each way: peak queued on a link ${(peak / 1024).toFixed(0)} KiB (read limit ${limit / 1024} KiB)`);
  assert.equal(stopped, false, 'neither side ever stopped reading');
  g.destroy(); a.destroy();
});
