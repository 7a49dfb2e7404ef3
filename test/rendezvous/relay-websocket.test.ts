import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { WebSocket as Ws, type WebSocket } from 'ws';
import { encodeFrame } from '../../src/rendezvous/framing.ts';
import { NetSet } from '../../src/util/cidr.ts';
import { readAll, waitFor } from '../helpers/net.ts';
import { closed, handRequestFrame, readExactly, requestFrame, startRelay, tcpHalf, wsHalf } from '../helpers/relay.ts';

/** Collects the binary messages a WebSocket receives. */
function inbox(ws: WebSocket): Buffer[] {
  const got: Buffer[] = [];
  ws.on('message', (m: Buffer, isBinary) => { if (isBinary) got.push(m); });
  return got;
}

test('WebSocket ⇄ TCP: each message becomes one BytesCodec frame and each frame one message, early ones included', async () => {
  const { relay, events } = await startRelay();
  try {
    const ws = await wsHalf(relay.wsPort!, 'mixed', '');
    const got = inbox(ws);
    ws.send(Buffer.from('ws-early'));
    await waitFor(() => relay.stats().pending === 1 && relay.stats().queuedBytes === 8, 5_000, 'WS waiting with its early message');
    // The TCP side uses the hand-written RequestRelay and sends two frames behind it in the same write.
    const t = await tcpHalf(relay.tcpPort, handRequestFrame('mixed', ''), Buffer.concat([encodeFrame(Buffer.from('tcp-early-1')), encodeFrame(Buffer.from('tcp-early-2'))]));
    assert.deepEqual(await readExactly(t, 9), encodeFrame(Buffer.from('ws-early')));
    await waitFor(() => got.length === 2, 5_000, 'two messages');
    assert.deepEqual(got.map(String), ['tcp-early-1', 'tcp-early-2']);
    assert.deepEqual(events.paired.map((p) => p.ws), [true]);
    // Sizes across the 1-, 2-, 3-byte header boundaries, and a frame split across writes.
    const sizes = [1, 63, 64, 16383, 16384, 300_000];
    for (const n of sizes) ws.send(Buffer.alloc(n, n & 0xff));
    const want = Buffer.concat(sizes.map((n) => encodeFrame(Buffer.alloc(n, n & 0xff))));
    assert.deepEqual(await readExactly(t, want.length), want);
    for (const n of sizes) {
      const f = encodeFrame(Buffer.alloc(n, (n + 1) & 0xff));
      t.write(f.subarray(0, 1));
      t.write(f.subarray(1));
    }
    // Empty messages and frames carry nothing and are not forwarded.
    ws.send(Buffer.alloc(0));
    t.write(encodeFrame(Buffer.alloc(0)));
    await waitFor(() => got.length === 2 + sizes.length, 10_000, 'every frame as a message');
    assert.deepEqual(got.slice(2).map((m) => m.length), sizes);
    assert.ok(got.slice(2).every((m, i) => m.every((x) => x === ((sizes[i]! + 1) & 0xff))));
    ws.send(Buffer.from('last'));
    assert.deepEqual(await readExactly(t, 5), encodeFrame(Buffer.from('last')));
    // The WebSocket closes: the TCP side gets EOF.
    ws.close();
    const rest = await readAll(t);
    assert.equal(rest.eof, true);
    assert.equal(rest.data.length, 0);
    t.destroy();
    await waitFor(() => events.ended.length === 1, 5_000, 'pair ended');
    assert.equal(events.ended[0]!.reason, 'a_closed');
  } finally {
    await relay.close();
  }
});

test('WebSocket ⇄ WebSocket passes messages both ways', async () => {
  const { relay, events } = await startRelay();
  try {
    const a = await wsHalf(relay.wsPort!, 'ws-ws');
    const gotA = inbox(a);
    await waitFor(() => relay.stats().pending === 1, 5_000, 'A waiting');
    const b = await wsHalf(relay.wsPort!, 'ws-ws');
    const gotB = inbox(b);
    await waitFor(() => relay.stats().paired === 1, 5_000, 'paired');
    for (let i = 0; i < 50; i++) {
      a.send(Buffer.alloc(i * 1000 + 1, i));
      b.send(Buffer.from(`b${i}`));
    }
    await waitFor(() => gotA.length === 50 && gotB.length === 50, 10_000, 'all messages');
    assert.deepEqual(gotA.map(String), Array.from({ length: 50 }, (_, i) => `b${i}`));
    assert.ok(gotB.every((m, i) => m.length === i * 1000 + 1 && m[0] === i));
    b.close();
    await once(a, 'close');
    await waitFor(() => events.ended.length === 1, 5_000, 'pair ended');
    assert.equal(events.ended[0]!.reason, 'b_closed');
  } finally {
    await relay.close();
  }
});

test('WebSocket first messages: wrong key, text, oversize: closed and counted; a TCP partner gets nothing', async () => {
  const { relay, events } = await startRelay({ key: 'K', maxFrameSize: 1024 });
  try {
    const t = await tcpHalf(relay.tcpPort, requestFrame('wk', 'K'));
    await waitFor(() => relay.stats().pending === 1, 5_000, 'TCP waiting');
    const wrong = await wsHalf(relay.wsPort!, 'wk', 'k');
    wrong.send(Buffer.from('LEAK'));
    await once(wrong, 'close');
    const t2 = new Ws(`ws://127.0.0.1:${relay.wsPort}/`);
    t2.on('error', () => undefined);
    await once(t2, 'open');
    t2.send('a text message');
    await once(t2, 'close');
    const big = new Ws(`ws://127.0.0.1:${relay.wsPort}/`);
    big.on('error', () => undefined);
    await once(big, 'open');
    big.send(Buffer.alloc(64 * 1024, 1));
    await once(big, 'close');
    assert.deepEqual(events.refused.map((r) => r.reason), ['key_mismatch', 'not_request_relay', 'frame_too_large']);
    const good = await wsHalf(relay.wsPort!, 'wk', 'K');
    good.send(Buffer.from('GOOD'));
    assert.deepEqual(await readExactly(t, 5), encodeFrame(Buffer.from('GOOD')));
    good.terminate();
    t.destroy();
  } finally {
    await relay.close();
  }
});

test('plain HTTP on the WebSocket port is answered 426 and closed', async () => {
  const { relay } = await startRelay();
  try {
    const res = await fetch(`http://127.0.0.1:${relay.wsPort}/`);
    assert.equal(res.status, 426);
    await res.text();
  } finally {
    await relay.close();
  }
});

test('WebSocket ⇄ TCP: a frame from the TCP side over maxMessageSize ends the pair (TCP side destroyed, WebSocket closed)', async () => {
  const { relay, events } = await startRelay({ maxMessageSize: 1024 });
  try {
    const ws = await wsHalf(relay.wsPort!, 'too-big');
    const got = inbox(ws);
    await waitFor(() => relay.stats().pending === 1, 5_000, 'WS waiting');
    const t = await tcpHalf(relay.tcpPort, requestFrame('too-big'), encodeFrame(Buffer.alloc(1024, 1)));
    let atTcp = 0;
    t.on('data', (c: Buffer) => { atTcp += c.length; });
    await waitFor(() => got.length === 1, 5_000, 'a frame at the limit passes');
    const closing = once(ws, 'close');
    t.write(encodeFrame(Buffer.alloc(1025, 2)).subarray(0, 10));
    await Promise.all([closing, closed(t)]);
    assert.equal(atTcp, 0);
    assert.equal(got.length, 1);
    assert.deepEqual(events.ended.map((e) => e.reason), ['frame_too_large']);
  } finally {
    await relay.close();
  }
});

test('behind a trusted proxy, WebSocket connections count and are reported under the client the proxy names; others cannot name one', async () => {
  const { relay, events } = await startRelay({ trustedProxies: new NetSet(['127.0.0.1/32']), maxConnectionsPerIp: 1 });
  try {
    const via = (client: string): { headers: Record<string, string> } => ({ headers: { 'x-forwarded-for': client } });
    // Two clients through one proxy address: the per-IP cap of 1 applies to each client, not to the proxy.
    const a = await wsHalf(relay.wsPort!, 'proxied', '', via('203.0.113.5'));
    await waitFor(() => relay.stats().pending === 1, 5_000, 'A waiting');
    const b = await wsHalf(relay.wsPort!, 'proxied', '', via('198.51.100.7, 203.0.113.6'));
    await waitFor(() => events.paired.length === 1, 5_000, 'paired');
    assert.deepEqual([events.paired[0]!.ipA, events.paired[0]!.ipB], ['203.0.113.5', '203.0.113.6']);
    const again = await wsHalf(relay.wsPort!, 'other', '', via('203.0.113.5')).catch(() => null);
    await waitFor(() => events.refused.length === 1, 5_000, 'refused');
    assert.deepEqual(events.refused[0], { ip: '203.0.113.5', reason: 'per_ip' });
    again?.terminate();
    // An untrusted source's header is ignored: it is counted and reported as itself.
    const c = await wsHalf(relay.wsPort!, 'direct', '', { ...via('192.0.2.1'), localAddress: '127.0.0.2' });
    await waitFor(() => relay.stats().pending === 1, 5_000, 'C waiting');
    const d = await tcpHalf(relay.tcpPort, requestFrame('direct'), Buffer.alloc(0), '127.0.0.3');
    await waitFor(() => events.paired.length === 2, 5_000, 'second pair');
    assert.deepEqual([events.paired[1]!.ipA, events.paired[1]!.ipB], ['127.0.0.2', '127.0.0.3']);
    for (const w of [a, b, c]) w.terminate();
    d.destroy();
  } finally {
    await relay.close();
  }
});
