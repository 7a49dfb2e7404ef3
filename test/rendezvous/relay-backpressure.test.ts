import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeFrame } from '../../src/rendezvous/framing.ts';
import { sendPattern, waitFor } from '../helpers/net.ts';
import { receive, requestFrame, startRelay, tcpHalf, wsHalf } from '../helpers/relay.ts';

const MiB = 1024 * 1024;
/** Two high-water marks and two read chunks per direction, with room to spare. */
const BOUND = 1 * MiB;

/** Polls until `value()` has not changed for `stableFor` consecutive polls (bounded). */
async function settle(value: () => number, stableFor = 10, maxPolls = 1_000): Promise<void> {
  let last = -1;
  let same = 0;
  for (let i = 0; i < maxPolls && same < stableFor; i++) {
    const v = value();
    same = v === last ? same + 1 : 0;
    last = v;
    await sleep(20);
  }
}

test('a side that stops reading: the relay pauses the writer and holds a bounded amount; nothing is lost after', async () => {
  const { relay } = await startRelay();
  try {
    const a = await tcpHalf(relay.tcpPort, requestFrame('bp'));
    await waitFor(() => relay.stats().pending === 1, 5_000, 'A waiting');
    const b = await tcpHalf(relay.tcpPort, requestFrame('bp'));
    await waitFor(() => relay.stats().paired === 1, 5_000, 'paired');
    b.pause();
    const total = 48 * MiB;
    const sent = sendPattern(a, 5, total, false);
    let maxQueued = 0;
    // The writer stalls once every buffer on the way is full; meanwhile the relay's share stays small.
    await settle(() => {
      maxQueued = Math.max(maxQueued, relay.stats().queuedBytes);
      return a.bytesWritten;
    });
    assert.ok(a.bytesWritten < total, `the writer is held back (wrote ${a.bytesWritten} of ${total})`);
    assert.ok(maxQueued <= BOUND, `relay held at most ${maxQueued} bytes`);
    const got = receive(b, total);
    b.resume();
    const [hash, r] = await Promise.all([sent, got]);
    assert.equal(r.bytes, total);
    assert.equal(r.hash, hash);
    a.destroy();
    b.destroy();
  } finally {
    await relay.close();
  }
});

test('a TCP half sending to a WebSocket that stops reading is held back too', async () => {
  const { relay } = await startRelay();
  try {
    const ws = await wsHalf(relay.wsPort!, 'bp-ws');
    await waitFor(() => relay.stats().pending === 1, 5_000, 'WS waiting');
    const t = await tcpHalf(relay.tcpPort, requestFrame('bp-ws'));
    await waitFor(() => relay.stats().paired === 1, 5_000, 'paired');
    ws.pause();
    // 16 KiB frames (a 3-byte header), 32 MiB in all.
    const payload = Buffer.alloc(16 * 1024, 7);
    const one = encodeFrame(payload);
    const count = 2_000;
    let maxQueued = 0;
    void (async () => {
      for (let i = 0; i < count; i++) if (!t.write(one)) await new Promise((r) => t.once('drain', r));
    })();
    await settle(() => {
      maxQueued = Math.max(maxQueued, relay.stats().queuedBytes);
      return t.bytesWritten;
    });
    assert.ok(t.bytesWritten < count * one.length, 'the TCP writer is held back');
    assert.ok(maxQueued <= BOUND + 64 * 1024, `relay held at most ${maxQueued} bytes`);
    let messages = 0;
    let bad = 0;
    ws.on('message', (m: Buffer) => { messages++; if (!m.equals(payload)) bad++; });
    ws.resume();
    await waitFor(() => messages === count, 30_000, 'every frame as one message');
    assert.equal(bad, 0);
    ws.terminate();
    t.destroy();
  } finally {
    await relay.close();
  }
});
