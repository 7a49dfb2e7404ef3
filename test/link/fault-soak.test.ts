import assert from 'node:assert/strict';
import { createHash, randomInt } from 'node:crypto';
import { once } from 'node:events';
import { test } from 'node:test';
import type { LinkStream } from '../../src/link/index.ts';
import { Pattern } from '../helpers/fault-proxy.ts';
import { rig } from './helpers.ts';
import { receivePattern } from './migrate-helpers.ts';

const MIB = Number(process.env.DK_SOAK_MIB ?? 512);
const SIZE = MIB * 2 ** 20;
const MIN_DISCONNECTS = Number(process.env.DK_SOAK_DISCONNECTS ?? 200);
const WINDOW = 1024 * 1024;
const CHUNK = 256 * 1024;
/** Each connection lives at least this long before a fault may hit it (see FaultProxy.inject). */
const MIN_CONNECTION_AGE_MS = 30;

/**
 * Sends the pattern; before each chunk it waits until the disconnects so far are at least their
 * share of MIN_DISCONNECTS at that point of the stream, so that however fast or loaded the machine,
 * the disconnects happen during the transfer and not after it.
 */
async function send(s: LinkStream, p: Pattern, disconnects: () => number): Promise<string> {
  const h = createHash('sha256');
  for (let off = 0; off < SIZE; off += CHUNK) {
    const due = Math.ceil(((off + CHUNK) / SIZE) * MIN_DISCONNECTS);
    while (disconnects() < due && !s.destroyed) await new Promise((res) => setTimeout(res, 2));
    const c = p.slice(off, Math.min(CHUNK, SIZE - off));
    h.update(c);
    if (!s.write(c)) await once(s, 'drain');
  }
  s.end();
  return h.digest('hex');
}

test(`fault soak: ${MIB} MiB each way at once across ≥ ${MIN_DISCONNECTS} forced disconnects, bytes exact`, async (t) => {
  const seed = Number(process.env.DK_SEED ?? randomInt(2 ** 31));
  console.log(`# fault proxy seed ${seed} (rerun with DK_SEED=${seed})`);
  const opts = { window: WINDOW, pingMs: 40, deadMs: 150 };
  const r = await rig({ proxySeed: seed, server: { ...opts, detachTimeoutMs: 20_000 } });
  t.after(() => r.close());
  const up = new Pattern(seed);
  const down = new Pattern(seed + 1);
  const { c: client, s: server } = await r.pair({ ...opts, resumeForMs: 20_000 });
  let peakUnacked = 0;
  let peakRss = 0;
  let peakBuffered = 0;
  const sampler = setInterval(() => {
    peakUnacked = Math.max(peakUnacked, client.unacked, server.unacked);
    peakBuffered = Math.max(peakBuffered, client.buffered, server.buffered);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 5);
  let finished = false;
  // Faults keep coming until the transfer is over and enough disconnects have happened.
  const faults = (async () => {
    while ((!finished || client.stats.attaches - 1 < MIN_DISCONNECTS) && !client.destroyed && !server.destroyed) {
      await new Promise((res) => setTimeout(res, 8));
      if (finished && client.stats.attaches - 1 >= MIN_DISCONNECTS) break;
      if (r.proxy!.live > 0) r.proxy!.inject(r.proxy!.randomFault(), MIN_CONNECTION_AGE_MS);
    }
  })();
  const t0 = Date.now();
  let results;
  try {
    const disconnects = (): number => client.stats.attaches - 1;
    results = await Promise.all([send(client, up, disconnects), send(server, down, disconnects), receivePattern(server, up), receivePattern(client, down)]);
  } finally {
    finished = true;
  }
  const [sentUp, sentDown, gotAtServer, gotAtClient] = results;
  const ms = Date.now() - t0;
  // Keep injecting until the disconnect count is reached, on an idle session too.
  finished = true;
  await faults;
  clearInterval(sampler);
  const disconnects = client.stats.attaches - 1;
  const msg = `seed ${seed}`;
  console.log(`# ${MIB} MiB each way in ${ms} ms with ${disconnects} disconnects (${JSON.stringify(r.proxy!.counts)}); `
    + `retransmitted ${(client.stats.retransmitted / 2 ** 20).toFixed(1)} MiB up, ${(server.stats.retransmitted / 2 ** 20).toFixed(1)} MiB down; `
    + `peak unacked ${(peakUnacked / 1024).toFixed(0)} KiB (window ${WINDOW / 1024} KiB); peak buffered per stream ${(peakBuffered / 1024).toFixed(0)} KiB; `
    + `peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB`);
  assert.equal(gotAtServer.bad, -1, `${msg}: first wrong byte at the server at offset ${gotAtServer.bad}`);
  assert.equal(gotAtClient.bad, -1, `${msg}: first wrong byte at the client at offset ${gotAtClient.bad}`);
  assert.equal(gotAtServer.bytes, SIZE, msg);
  assert.equal(gotAtClient.bytes, SIZE, msg);
  assert.equal(gotAtServer.hash, sentUp, msg);
  assert.equal(gotAtClient.hash, sentDown, msg);
  assert.ok(disconnects >= MIN_DISCONNECTS, `${msg}: only ${disconnects} disconnects`);
  assert.ok(peakUnacked <= WINDOW, `${msg}: unacknowledged bytes ${peakUnacked} exceeded the window`);
  // Everything a stream holds — replay buffer, read and write queues, the socket's queue — stays
  // within a small multiple of the window (the socket queue may hold a sealed copy of the window).
  assert.ok(peakBuffered <= 3 * WINDOW, `${msg}: a stream held ${peakBuffered} bytes`);
});
