import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { ADMIN, agent, gateway, online } from '../helpers/stack.ts';
import { dial, hashUntilEnd, http, listen, patternChunk, sendPattern, waitFor } from '../helpers/net.ts';

const BULK = 64 * 1024 * 1024;
const FLOOD = 512 * 1024 * 1024;

test('a session whose reader never reads does not slow a bulk session, and memory stays bounded', async (t) => {
  const gw = await gateway();
  const ag = await agent(gw.servPort);
  let floodWritten = 0;
  let floodStop = false;
  const target = await listen((s: Socket) => {
    s.on('error', () => undefined);
    s.once('data', (first: Buffer) => {
      if (first[0] === 0x53) {
        // 'S': push as much as backpressure lets through, towards a client that never reads.
        void (async () => {
          for (let off = 0; off < FLOOD && !floodStop; off += 65536) {
            const ok = s.write(patternChunk(5, off, 65536));
            floodWritten += 65536;
            if (!ok) await Promise.race([once(s, 'drain'), once(s, 'close')]);
            if (s.destroyed) return;
          }
        })().catch(() => undefined);
      } else {
        sendPattern(s, 6, BULK).catch(() => undefined);
      }
    });
  });
  t.after(async () => { floodStop = true; await ag.stop(); await gw.cleanup(); target.server.close(); });
  await online(gw);
  const g = (await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: target.port } })).json;

  const stalled = await dial(g.access_port);
  stalled.pause();
  stalled.write('S');
  // Stalled: the client's kernel buffers are full and the gateway holds bytes it cannot write, so
  // it returns no more credit and the target's flood stops (within ~60 ms on loopback).
  await waitFor(() => [...gw.gateway.sessions.values()].some((s) => s.client.buffered > 0), 10_000, 'the stalled session to fill its client\'s buffers');
  const rssBefore = process.memoryUsage().rss;

  const bulk = await dial(g.access_port);
  const got = hashUntilEnd(bulk, 6);
  bulk.write('B');
  const t0 = Date.now();
  let peakGwBuffered = 0;
  let peakRss = 0;
  const sampler = setInterval(() => {
    for (const s of gw.gateway.sessions.values()) peakGwBuffered = Math.max(peakGwBuffered, s.client.buffered + s.session.pendingBytes);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 20);
  const r = await got;
  clearInterval(sampler);
  const ms = Date.now() - t0;
  assert.equal(r.bytes, BULK);
  assert.equal(r.firstBadOffset, -1);
  const window = gw.gateway.config.window;
  const windowMax = gw.gateway.config.window_max;
  console.log(`# bulk 64 MiB in ${ms} ms beside a stalled session; stalled target could write ${(floodWritten / 2 ** 20).toFixed(1)} MiB; `
    + `peak gateway buffering per session ${(peakGwBuffered / 1024).toFixed(0)} KiB (window ${window / 1024} KiB, growing to ${windowMax / 1024} KiB at most); RSS +${((peakRss - rssBefore) / 2 ** 20).toFixed(1)} MiB`);
  // The stalled session's data is held by credit: one window at the gateway, the rest in kernel
  // buffers. Its window may have grown while the client's kernel buffer still took every byte
  // at once (src/mux/window.ts), never past window_max.
  assert.ok(peakGwBuffered <= windowMax + 256 * 1024, `gateway buffered ${peakGwBuffered} bytes for one session`);
  assert.ok(floodWritten < 64 * 2 ** 20, `the stalled target was held back (wrote ${floodWritten} bytes)`);
  assert.ok(peakRss - rssBefore < 128 * 2 ** 20, 'process memory bounded');
  stalled.destroy();
  bulk.destroy();
});
