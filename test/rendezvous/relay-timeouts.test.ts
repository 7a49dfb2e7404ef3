import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { dial, waitFor } from '../helpers/net.ts';
import { closed, readExactly, requestFrame, startRelay, tcpHalf } from '../helpers/relay.ts';

test('no complete first message within firstFrameTimeoutMs: closed (silent, half a frame, an idle WebSocket)', async () => {
  const { relay, events } = await startRelay({ firstFrameTimeoutMs: 200 });
  try {
    const silent = await dial(relay.tcpPort);
    const partial = await dial(relay.tcpPort);
    partial.write(requestFrame('never-finished').subarray(0, 5));
    const rawOnWs = await dial(relay.wsPort!);
    const ws = new WebSocket(`ws://127.0.0.1:${relay.wsPort}/`);
    ws.on('error', () => undefined);
    await once(ws, 'open');
    await Promise.all([closed(silent), closed(partial), closed(rawOnWs), once(ws, 'close')]);
    assert.deepEqual(events.refused.map((r) => r.reason), ['timeout', 'timeout', 'timeout', 'timeout']);
    assert.equal(relay.stats().handshaking, 0);
  } finally {
    await relay.close();
  }
});

test('a half whose partner never comes is closed after pairTimeoutMs and its uuid is free again', async () => {
  const { relay, events } = await startRelay({ pairTimeoutMs: 200 });
  try {
    const a = await tcpHalf(relay.tcpPort, requestFrame('lonely'), Buffer.from('early'));
    await closed(a);
    assert.deepEqual(events.refused.map((r) => r.reason), ['pair_timeout']);
    assert.equal(relay.stats().pending, 0);
    assert.equal(relay.stats().queuedBytes, 0);
    const b = await tcpHalf(relay.tcpPort, requestFrame('lonely'), Buffer.from('B'));
    await waitFor(() => relay.stats().pending === 1, 5_000, 'a new half waits under the same uuid');
    const c = await tcpHalf(relay.tcpPort, requestFrame('lonely'), Buffer.from('C'));
    assert.equal((await readExactly(c, 1)).toString(), 'B', 'the expired half\'s early bytes are gone');
    b.destroy();
    c.destroy();
  } finally {
    await relay.close();
  }
});

test('a pair with no data either way for idleTimeoutMs is closed; a pair with traffic is not', async () => {
  const { relay, events } = await startRelay({ idleTimeoutMs: 1_500 });
  try {
    const a = await tcpHalf(relay.tcpPort, requestFrame('idle'));
    await waitFor(() => relay.stats().pending === 1, 5_000, 'A waiting');
    const b = await tcpHalf(relay.tcpPort, requestFrame('idle'));
    const c = await tcpHalf(relay.tcpPort, requestFrame('busy'));
    await waitFor(() => relay.stats().pending === 1 && relay.stats().paired === 1, 5_000, 'C waiting');
    const d = await tcpHalf(relay.tcpPort, requestFrame('busy'));
    await waitFor(() => relay.stats().paired === 2, 5_000, 'two pairs');
    d.resume();
    // Keep one pair busy (one direction only counts) until the idle one is closed.
    let stop = false;
    const busy = (async () => {
      for (let i = 0; i < 500 && !stop; i++) {
        c.write('.');
        await sleep(50);
      }
    })();
    await Promise.all([closed(a), closed(b)]);
    stop = true;
    await busy;
    assert.deepEqual(events.ended.map((e) => [e.uuid, e.reason]), [['idle', 'idle']]);
    assert.equal(relay.stats().paired, 1, 'the busy pair lives');
    c.destroy();
    d.destroy();
  } finally {
    await relay.close();
  }
});
