import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import { punch, type PunchInit } from '../../src/p2p/punch.ts';
import { pathLine } from '../../src/p2p/reason.ts';
import { encodeSelect, SELECT_BYTES } from '../../src/p2p/select.ts';
import { listen, readAll } from '../helpers/net.ts';

// The punch's socket logic on loopback, with a scripted peer listening instead of punching:
// a plain connect reaches it, so the select exchange, redials and reasons are tested without the
// NAT lab (test/p2p/lab-*.test.ts punches for real).

const token = Buffer.from('0f'.repeat(16), 'hex');
const lo = (port: number): PunchInit['candidates'][number] => ({ kind: 'public', host: '127.0.0.1', port });

/** A free local port to punch from. */
async function freePort(): Promise<number> {
  const { server, port } = await listen(() => undefined);
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Reads exactly n bytes from a socket. */
function readN(s: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      if (buf.length >= n) { s.off('data', onData); s.pause(); if (buf.length > n) s.unshift(buf.subarray(n)); resolve(buf.subarray(0, n)); }
    };
    s.on('data', onData);
    s.once('close', () => reject(new Error(`closed after ${buf.length} of ${n} bytes`)));
  });
}

async function close(server: Server): Promise<void> {
  await new Promise<void>((r) => server.close(() => r()));
}

const base = async (candidates: PunchInit['candidates'], over: Partial<PunchInit> = {}): Promise<PunchInit> =>
  ({ localPort: await freePort(), localAddress: '127.0.0.1', candidates, role: 'initiator', token, deadlineMs: 3_000, ...over });

test('initiator: SELECT out, ACK back; the bytes the peer sent right after the ACK reach the caller', async () => {
  const seen: Buffer[] = [];
  const { server, port } = await listen((s) => {
    s.on('error', () => undefined);
    void readN(s, SELECT_BYTES).then((sel) => {
      seen.push(sel);
      s.write(Buffer.concat([encodeSelect('ack', token), Buffer.from('first bytes')]));
      s.end();
    });
  });
  try {
    const r = await punch(await base([lo(port)]));
    assert.equal(r.ok, true, pathLine(r));
    assert.ok(r.ok);
    assert.deepEqual(seen, [encodeSelect('select', token)]);
    assert.match(pathLine(r), /^path=direct via="public 127\.0\.0\.1:\d+" ms=\d+ attempts=1$/);
    // The socket comes back paused: a 'data' listener alone does not start it.
    const reading = readAll(r.socket);
    r.socket.resume();
    assert.equal((await reading).data.toString(), 'first bytes');
    r.socket.destroy();
  } finally {
    await close(server);
  }
});

test('responder: waits for SELECT, answers ACK, and keeps the connection', async () => {
  let ack: Buffer | undefined;
  const { server, port } = await listen((s) => {
    s.on('error', () => undefined);
    s.write(encodeSelect('select', token));
    void readN(s, SELECT_BYTES).then((b) => { ack = b; s.end('after'); });
  });
  try {
    const r = await punch(await base([lo(port)], { role: 'responder' }));
    assert.ok(r.ok, pathLine(r));
    const reading = readAll(r.socket);
    r.socket.resume();
    assert.equal((await reading).data.toString(), 'after');
    r.socket.destroy();
    assert.deepEqual(ack, encodeSelect('ack', token));
  } finally {
    await close(server);
  }
});

test('two candidates connect: the one that ACKs wins, the other is reset and reported lost', async () => {
  let resets = 0;
  const silent = await listen((s) => { s.on('error', () => { resets++; }); s.on('close', () => undefined); });
  const acking = await listen((s) => {
    s.on('error', () => undefined);
    void readN(s, SELECT_BYTES).then(() => s.write(encodeSelect('ack', token)));
  });
  try {
    const r = await punch(await base([lo(silent.port), lo(acking.port)]));
    assert.ok(r.ok, pathLine(r));
    assert.equal(r.candidate.port, acking.port);
    assert.deepEqual(r.outcomes.map((o) => o.reason), ['lost', 'won']);
    r.socket.resetAndDestroy();
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(resets, 1, 'the losing connection was reset, not closed gracefully');
  } finally {
    await close(silent.server);
    await close(acking.server);
  }
});

test('wrong token, wrong kind or garbage: bad-select, no redial, and the punch ends without waiting for the deadline', async () => {
  const replies = [encodeSelect('ack', Buffer.alloc(16, 1)), encodeSelect('select', token), Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')];
  for (const reply of replies) {
    const { server, port } = await listen((s) => { s.on('error', () => undefined); s.write(reply); });
    try {
      const r = await punch(await base([lo(port)], { deadlineMs: 20_000 }));
      assert.equal(r.ok, false);
      assert.equal(r.outcomes[0]?.reason, 'bad-select');
      assert.equal(r.outcomes[0]?.attempts, 1);
      assert.ok(r.ms < 20_000);
      assert.match(pathLine(r), /^path=relay reason="no direct path \(every candidate failed in \d+ ms\): public 127\.0\.0\.1:\d+ bad-select \(/);
    } finally {
      await close(server);
    }
  }
});

test('nobody there: refused, redialled from the same port up to maxAttempts, then reported', async () => {
  const port = await freePort();
  const r = await punch(await base([lo(port)], { maxAttempts: 3, retryDelayMs: 10 }));
  assert.equal(r.ok, false);
  assert.deepEqual(r.outcomes, [{ candidate: lo(port), attempts: 3, reason: 'refused', detail: 'ECONNREFUSED' }]);
  assert.match(pathLine(r), /refused \(ECONNREFUSED\) after 3 tries"$/);
});

test('connected but the peer never chooses: no-select at the deadline; a peer that closes first: reset', async () => {
  const mute = await listen((s) => { s.on('error', () => undefined); });
  const closer = await listen((s) => { s.on('error', () => undefined); s.end(); });
  try {
    const r = await punch(await base([lo(mute.port), lo(closer.port)], { deadlineMs: 300 }));
    assert.equal(r.ok, false);
    assert.deepEqual(r.outcomes.map((o) => [o.reason, o.detail]), [['no-select', undefined], ['reset', 'the other end closed before select']]);
    assert.match(pathLine(r), /^path=relay reason="no direct path in 300 ms: /);
  } finally {
    await close(mute.server);
    await close(closer.server);
  }
});

test('a listener on the local port: addr-in-use, reported, not redialled', async () => {
  const blocker = createServer();
  blocker.listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  const { server, port } = await listen(() => undefined);
  try {
    const r = await punch({ ...(await base([lo(port)])), localPort: (blocker.address() as AddressInfo).port });
    assert.equal(r.ok, false);
    assert.deepEqual([r.outcomes[0]?.reason, r.outcomes[0]?.attempts], ['addr-in-use', 1]);
  } finally {
    await close(blocker);
    await close(server);
  }
});

test('no candidates, an abort, and out-of-range settings', async () => {
  const none = await punch(await base([]));
  assert.equal(pathLine(none), 'path=relay reason="no direct path: the peer has no candidate this side can dial"');
  const mute = await listen((s) => { s.on('error', () => undefined); });
  try {
    const ac = new AbortController();
    const p = punch(await base([lo(mute.port)], { signal: ac.signal, deadlineMs: 30_000 }));
    setTimeout(() => ac.abort(), 100);
    const r = await p;
    assert.equal(r.ok, false);
    assert.ok(r.ms < 30_000);
  } finally {
    await close(mute.server);
  }
  await assert.rejects(punch(await base([], { deadlineMs: 0 })), /deadlineMs must be within 1\.\.60000/);
  await assert.rejects(punch(await base([], { maxAttempts: 1000 })), /maxAttempts/);
  await assert.rejects(punch(await base([], { token: Buffer.alloc(3) })), /token must be 16 bytes/);
});
