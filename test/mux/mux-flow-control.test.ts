import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { encodeDat } from '../../src/protocol/index.ts';
import { pair, recorder, until } from './helpers.ts';

const W = 64 * 1024;

test('a sender never puts more than the window in flight to a reader that does not consume', async () => {
  const p = pair({ window: W }, { window: W });
  const { g, a, opened } = p;
  await p.negotiated();
  const s = g.open(22, '127.0.0.1');
  await until(() => opened.length === 1, 'the OPN');
  const r = recorder();
  opened[0]!.attach(r, () => undefined); // never reports consumption
  const accepted = s.write(randomBytes(10 * W));
  await until(() => r.bytes >= W, 'the first window');
  await p.roundTrip(); // whatever else the sender wrote has arrived
  assert.equal(accepted, false, 'write reports backpressure');
  assert.equal(r.bytes, W, 'exactly one window delivered');
  assert.equal(s.pendingBytes, 9 * W, 'the rest waits at the sender');
  opened[0]!.consumed(W);
  await until(() => r.bytes >= 2 * W, 'the second window');
  await p.roundTrip();
  assert.equal(r.bytes, 2 * W, 'consumption returns credit and the next window flows');
  g.destroy(); a.destroy();
});

test('a peer that overruns its window is a protocol error that closes the link', async () => {
  let err: Error | undefined;
  const p = pair({ window: W }, { window: 4096, onClose: (e) => { err = e; } });
  const { g, a } = p;
  await p.negotiated();
  const s = g.open(22, '127.0.0.1');
  // The OPN leaves (open() holds it for a loop turn) before the raw frames below.
  await until(() => a.sessions.has(s.id), 'the OPN');
  // Bypass the session's credit check and write raw DAT frames past the agent's 4096-byte window.
  g.link.write(encodeDat(s.id, Buffer.alloc(4000)));
  g.link.write(encodeDat(s.id, Buffer.alloc(4000)));
  await until(() => a.closed, 'the agent to close the link');
  assert.equal(a.closed, true);
  assert.equal((err as { code?: string } | undefined)?.code, 'DK_FLOW_CONTROL');
  g.destroy();
});

test('a stalled session does not stop another session on the same link', async () => {
  const p = pair({ window: W }, { window: W });
  const { g, a, opened } = p;
  await p.negotiated();
  const stalled = g.open(1, '127.0.0.1');
  const bulk = g.open(2, '127.0.0.1');
  await until(() => opened.length === 2, 'both OPNs');
  const rs = recorder();
  const rb = recorder();
  opened[0]!.attach(rs, () => undefined);
  opened[1]!.attach({ ...rb, data: (b) => { rb.data(b); opened[1]!.consumed(rb.bytes); } }, () => undefined);
  stalled.write(randomBytes(8 * W));
  const total = 50 * W;
  for (let sent = 0; sent < total; sent += W) bulk.write(randomBytes(W));
  await until(() => rb.bytes >= total && rs.bytes >= W, 'the bulk session to finish');
  await p.roundTrip();
  assert.equal(rb.bytes, total, 'bulk session delivered everything');
  assert.equal(rs.bytes, W, 'stalled session is held at one window');
  g.destroy(); a.destroy();
});

test('half-close: FIN each way ends the session as done; data after FIN still flows', async () => {
  const p = pair();
  const { g, a, opened } = p;
  await p.negotiated();
  const s = g.open(22, '127.0.0.1');
  const rg = recorder();
  s.attach(rg, () => undefined);
  await until(() => opened.length === 1, 'the OPN');
  const ra = recorder();
  const as = opened[0]!;
  as.attach(ra, () => undefined);
  s.write(Buffer.from('request'));
  s.end();
  await until(() => ra.ended, 'the FIN');
  await p.roundTrip(); // a CLS sent after the FIN would be here by now
  assert.equal(ra.ended, true);
  assert.equal(ra.reason, null, 'half-closed, not closed');
  as.write(Buffer.from('response after peer FIN'));
  as.end();
  await until(() => rg.reason !== null, 'the session to end at the gateway');
  assert.equal(Buffer.concat(rg.chunks).toString(), 'response after peer FIN');
  assert.equal(rg.reason, 'done');
  assert.equal(ra.reason, 'done');
  assert.equal(g.sessions.size, 0);
  assert.equal(a.sessions.size, 0);
  g.destroy(); a.destroy();
});

test('legacy mode: end() sends CLS after the data, and the peer sees end then remote close', async () => {
  const p = pair({ features: 0 });
  const { g, a, opened } = p;
  await p.roundTrip('a'); // the agent's HELLO has reached the seed-only gateway, which ignored it
  const s = g.open(22, '127.0.0.1');
  await until(() => opened.length === 1, 'the OPN');
  const ra = recorder();
  opened[0]!.attach(ra, () => undefined);
  assert.equal(s.flow, false);
  s.write(Buffer.from('abc'));
  s.end();
  await until(() => ra.reason !== null, 'the CLS');
  assert.equal(Buffer.concat(ra.chunks).toString(), 'abc');
  assert.equal(ra.ended, true);
  assert.equal(ra.reason, 'remote');
  g.destroy(); a.destroy();
});

test('link loss closes every session with reason link', async () => {
  const p = pair();
  const { g, a, opened } = p;
  await p.negotiated();
  g.open(1, '127.0.0.1');
  await until(() => opened.length === 1, 'the OPN');
  const r = recorder();
  opened[0]!.attach(r, () => undefined);
  g.destroy();
  await until(() => r.reason !== null, 'the agent side to see the link go');
  assert.equal(r.reason, 'link');
  assert.equal(a.closed, true);
});

test('the frames of one link read reach the sink in one call, even when the link hands them over in several chunks', async () => {
  const p = pair();
  const { g, a, opened, agentLink } = p;
  await p.negotiated();
  g.open(1, '127.0.0.1');
  await until(() => opened.length === 1, 'the OPN');
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
  for (const part of parts) agentLink.emit('data', encodeDat(local.id, part));
  const total = parts.reduce((n, b) => n + b.length, 0);
  await until(() => got.reduce((n, b) => n + b.length, 0) >= total, 'the three frames');
  assert.deepEqual(calls, [3], 'one delivery with all three frames');
  assert.deepEqual(Buffer.concat(got), Buffer.concat(parts));
  g.destroy(); a.destroy();
});

test('frames received for a session that closes before their delivery are dropped, not written to a closed sink', async () => {
  const p = pair();
  const { g, a, opened } = p;
  await p.negotiated();
  const s = g.open(1, '127.0.0.1');
  await until(() => opened.length === 1, 'the OPN');
  const r = recorder();
  const local = opened[0]!;
  local.attach(r, () => undefined);
  // A frame arrives and, in the same run, the local end aborts the session.
  s.write(Buffer.from('late'));
  local.close();
  await p.roundTrip(); // the DAT has been read (and dropped), the CLS has reached the gateway
  assert.equal(r.reason, 'local');
  assert.equal(r.bytes, 0);
  g.destroy(); a.destroy();
});
