import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { encodeDat } from '../../src/protocol/index.ts';
import { pair, recorder, settle } from './helpers.ts';

const W = 64 * 1024;

test('a sender never puts more than the window in flight to a reader that does not consume', async () => {
  const { g, a, opened } = pair({ window: W }, { window: W });
  await settle();
  const s = g.open(22, '127.0.0.1');
  await settle();
  const r = recorder();
  opened[0]!.attach(r, () => undefined); // never reports consumption
  const accepted = s.write(randomBytes(10 * W));
  await settle(50);
  assert.equal(accepted, false, 'write reports backpressure');
  assert.equal(r.bytes, W, 'exactly one window delivered');
  assert.equal(s.pendingBytes, 9 * W, 'the rest waits at the sender');
  opened[0]!.consumed(W);
  await settle(50);
  assert.equal(r.bytes, 2 * W, 'consumption returns credit and the next window flows');
  g.destroy(); a.destroy();
});

test('a peer that overruns its window is a protocol error that closes the link', async () => {
  let err: Error | undefined;
  const { g, a } = pair({ window: W }, { window: 4096, onClose: (e) => { err = e; } });
  await settle();
  const s = g.open(22, '127.0.0.1');
  await settle(); // the OPN leaves (open() holds it for a loop turn) before the raw frames below
  // Bypass the session's credit check and write raw DAT frames past the agent's 4096-byte window.
  g.link.write(encodeDat(s.id, Buffer.alloc(4000)));
  g.link.write(encodeDat(s.id, Buffer.alloc(4000)));
  await settle();
  assert.equal(a.closed, true);
  assert.equal((err as { code?: string } | undefined)?.code, 'DK_FLOW_CONTROL');
  g.destroy();
});

test('a stalled session does not stop another session on the same link', async () => {
  const { g, a, opened } = pair({ window: W }, { window: W });
  await settle();
  const stalled = g.open(1, '127.0.0.1');
  const bulk = g.open(2, '127.0.0.1');
  await settle();
  const rs = recorder();
  const rb = recorder();
  opened[0]!.attach(rs, () => undefined);
  opened[1]!.attach({ ...rb, data: (b) => { rb.data(b); opened[1]!.consumed(rb.bytes); } }, () => undefined);
  stalled.write(randomBytes(8 * W));
  const total = 50 * W;
  for (let sent = 0; sent < total; sent += W) bulk.write(randomBytes(W));
  await settle(400);
  assert.equal(rb.bytes, total, 'bulk session delivered everything');
  assert.equal(rs.bytes, W, 'stalled session is held at one window');
  g.destroy(); a.destroy();
});

test('half-close: FIN each way ends the session as done; data after FIN still flows', async () => {
  const { g, a, opened } = pair();
  await settle();
  const s = g.open(22, '127.0.0.1');
  const rg = recorder();
  s.attach(rg, () => undefined);
  await settle();
  const ra = recorder();
  const as = opened[0]!;
  as.attach(ra, () => undefined);
  s.write(Buffer.from('request'));
  s.end();
  await settle();
  assert.equal(ra.ended, true);
  assert.equal(ra.reason, null, 'half-closed, not closed');
  as.write(Buffer.from('response after peer FIN'));
  as.end();
  await settle();
  assert.equal(Buffer.concat(rg.chunks).toString(), 'response after peer FIN');
  assert.equal(rg.reason, 'done');
  assert.equal(ra.reason, 'done');
  assert.equal(g.sessions.size, 0);
  assert.equal(a.sessions.size, 0);
  g.destroy(); a.destroy();
});

test('legacy mode: end() sends CLS after the data, and the peer sees end then remote close', async () => {
  const { g, a, opened } = pair({ features: 0 });
  await settle();
  const s = g.open(22, '127.0.0.1');
  await settle();
  const ra = recorder();
  opened[0]!.attach(ra, () => undefined);
  assert.equal(s.flow, false);
  s.write(Buffer.from('abc'));
  s.end();
  await settle();
  assert.equal(Buffer.concat(ra.chunks).toString(), 'abc');
  assert.equal(ra.ended, true);
  assert.equal(ra.reason, 'remote');
  g.destroy(); a.destroy();
});

test('link loss closes every session with reason link', async () => {
  const { g, a, opened } = pair();
  await settle();
  g.open(1, '127.0.0.1');
  await settle();
  const r = recorder();
  opened[0]!.attach(r, () => undefined);
  g.destroy();
  await settle();
  assert.equal(r.reason, 'link');
  assert.equal(a.closed, true);
});

test('the frames of one link read reach the sink in one call, even when the link hands them over in several chunks', async () => {
  const { g, a, opened, agentLink } = pair();
  await settle();
  g.open(1, '127.0.0.1');
  await settle();
  const calls: number[] = [];
  const got: Buffer[] = [];
  const local = opened[0]!;
  local.attach({
    ...recorder(),
    data(b) { calls.push(1); got.push(b); },
    dataMany(bufs) { calls.push(bufs.length); got.push(...bufs); },
  }, () => undefined);
  // Three DAT frames handed over as three chunks in one synchronous run, the way an encrypted
  // link hands over the records of one socket read.
  const parts = [randomBytes(8185), randomBytes(8185), randomBytes(100)];
  for (const p of parts) agentLink.emit('data', encodeDat(local.id, p));
  await settle();
  assert.deepEqual(calls, [3], 'one delivery with all three frames');
  assert.deepEqual(Buffer.concat(got), Buffer.concat(parts));
  g.destroy(); a.destroy();
});

test('frames received for a session that closes before their delivery are dropped, not written to a closed sink', async () => {
  const { g, a, opened } = pair();
  await settle();
  const s = g.open(1, '127.0.0.1');
  await settle();
  const r = recorder();
  const local = opened[0]!;
  local.attach(r, () => undefined);
  // A frame arrives and, in the same run, the local end aborts the session.
  s.write(Buffer.from('late'));
  local.close();
  await settle();
  assert.equal(r.reason, 'local');
  assert.equal(r.bytes, 0);
  g.destroy(); a.destroy();
});
