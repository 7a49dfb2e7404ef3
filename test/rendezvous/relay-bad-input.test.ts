import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { liveHeap } from '../helpers/hostile.ts';
import { dial, waitFor } from '../helpers/net.ts';
import { Prng } from '../helpers/prng.ts';
import { readExactly, requestFrame, startRelay, tcpHalf } from '../helpers/relay.ts';

const SECONDS = Number(process.env.DK_FUZZ_SECONDS ?? 2);
const CONCURRENCY = 16;
const MAX_FRAME = 16 * 1024;

/** Resolves when `s` is closed, destroying it after `ms` at the latest (the relay may be waiting for more). */
function done(s: Socket, ms: number): Promise<void> {
  if (s.destroyed) return Promise.resolve();
  const t = setTimeout(() => s.destroy(), ms);
  s.resume();
  s.once('end', () => s.destroy());
  return new Promise((resolve) => s.once('close', () => { clearTimeout(t); resolve(); }));
}

async function hostileTcp(port: number, rng: Prng): Promise<void> {
  const s = await dial(port);
  switch (rng.int(5)) {
    case 0: s.end(rng.bytes(rng.int(1, 4096))); break;
    case 1: {
      // A RequestRelay with a few bytes changed, and junk behind it.
      const f = Buffer.from(requestFrame(`fuzz-${rng.int(50)}`, 'k', '123456789'));
      for (let i = rng.int(1, 4); i > 0; i--) f[rng.int(f.length)] = rng.int(256);
      s.end(Buffer.concat([f, rng.bytes(rng.int(64))]));
      break;
    }
    case 2: {
      // A header announcing a frame over the limit, then a trickle.
      const h = Buffer.alloc(4);
      h.writeUInt32LE(((MAX_FRAME + 1 + rng.int(1 << 20)) * 4) | 3);
      s.write(h);
      s.write(rng.bytes(rng.int(100)));
      break;
    }
    case 3: s.write(rng.bytes(rng.int(1, 2048))); break; // left open: the first-message deadline
    default: s.end(Buffer.concat([requestFrame(`fuzz-${rng.int(50)}`), rng.bytes(rng.int(100_000))])); break;
  }
  await done(s, 3_000);
}

async function hostileWs(port: number, rng: Prng): Promise<void> {
  if (rng.int(2) === 0) {
    // Not even HTTP.
    const s = await dial(port);
    s.end(rng.bytes(rng.int(1, 4096)));
    return done(s, 3_000);
  }
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  ws.on('error', () => undefined);
  const t = setTimeout(() => ws.terminate(), 3_000);
  ws.once('open', () => {
    ws.send(rng.bytes(rng.int(rng.int(2) ? 64 : 64 * 1024)));
    ws.send(rng.bytes(rng.int(512)));
  });
  await closed;
  clearTimeout(t);
}

test('random and malformed first messages: connections closed, memory bounded, the relay keeps serving', async (t) => {
  const rng = Prng.fromEnv();
  const { relay } = await startRelay({ key: 'k', firstFrameTimeoutMs: 300, pairTimeoutMs: 300, maxFrameSize: MAX_FRAME });
  try {
    const before = await liveHeap();
    let maxQueued = 0;
    let maxConns = 0;
    const sample = setInterval(() => {
      const s = relay.stats();
      maxQueued = Math.max(maxQueued, s.queuedBytes);
      maxConns = Math.max(maxConns, s.connections);
    }, 5);
    const end = Date.now() + SECONDS * 1000;
    let n = 0;
    const worker = async (): Promise<void> => {
      while (Date.now() < end) {
        n++;
        await (rng.int(3) === 0 ? hostileWs(relay.wsPort!, rng) : hostileTcp(relay.tcpPort, rng));
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    clearInterval(sample);
    await waitFor(() => relay.stats().connections === 0 && relay.stats().pending === 0, 10_000, 'every hostile connection gone');
    const after = await liveHeap();
    const stats = relay.stats();
    const info = `seed ${rng.seed} (DK_FUZZ_SEED), ${n} connections, refused ${JSON.stringify(stats.refused)}`;
    t.diagnostic(`${info}; max queued ${maxQueued} B, max connections ${maxConns}, live heap ${after - before} B`);
    assert.ok(n > CONCURRENCY, info);
    assert.equal(stats.paired, 0, info);
    // Per connection: a partial first frame (≤ limit + one read) or early bytes up to maxEarlyBytes plus one read.
    assert.ok(maxQueued <= CONCURRENCY * (MAX_FRAME + 64 * 1024 + 64 * 1024), `queued ${maxQueued} bytes; ${info}`);
    assert.ok(maxConns <= CONCURRENCY * 2, `${maxConns} connections; ${info}`);
    assert.ok(after - before < 16 * 1024 * 1024, `live heap grew by ${after - before} bytes; ${info}`);
    // Still serving.
    const a = await tcpHalf(relay.tcpPort, requestFrame('after-fuzz', 'k'));
    await waitFor(() => relay.stats().pending === 1, 5_000, 'a real half waits');
    const b = await tcpHalf(relay.tcpPort, requestFrame('after-fuzz', 'k'), Buffer.from('ok'));
    assert.equal((await readExactly(a, 2)).toString(), 'ok');
    a.destroy();
    b.destroy();
  } finally {
    await relay.close();
  }
});
