import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { connectLink, generateKeyPair, type LinkStream } from '../../src/link/index.ts';
import { resumeHello, resumeProof } from '../../src/link/handshake.ts';
import { Pattern } from '../helpers/fault-proxy.ts';
import { listen, waitFor } from '../helpers/net.ts';
import { rig } from './helpers.ts';

/** Reads exactly n bytes from a stream. */
function readN(s: LinkStream, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let have = 0;
    const onData = (c: Buffer): void => {
      parts.push(c);
      have += c.length;
      if (have >= n) { s.off('data', onData); s.pause(); resolve(Buffer.concat(parts)); }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.resume();
  });
}

test('seed-003 regression: two reconnects before the application reads deliver no duplicates', async (t) => {
  const r = await rig({ proxySeed: 1 });
  t.after(() => r.close());
  const { c, s } = await r.pair();
  s.pause(); // the application does not read yet
  const p = new Pattern(7);
  const total = 3 * 1024 * 1024;
  for (let off = 0; off < total; off += 512 * 1024) c.write(p.slice(off, 512 * 1024));
  for (let i = 0; i < 2; i++) {
    const before = c.stats.attaches;
    r.proxy!.inject('reset');
    await waitFor(() => c.stats.attaches > before && c.attached, 5000, 'resume');
  }
  const got = await readN(s, total);
  assert.equal(got.length, total);
  assert.equal(p.check(0, got), -1, 'no byte duplicated or skipped');
  c.write(Buffer.from('after'));
  assert.equal((await readN(s, 5)).toString(), 'after');
});

test('seed-003 regression: a half-open old socket on the server does not block the resume', async (t) => {
  const clientDead = 300;
  const r = await rig({ proxySeed: 2, server: { pingMs: 60_000, deadMs: 180_000 } });
  t.after(() => r.close());
  const { c, s } = await r.pair({ pingMs: 100, deadMs: clientDead });
  r.proxy!.halfOpenServer = true;
  r.proxy!.inject('blackhole');
  const t0 = Date.now();
  c.write(Buffer.from('through the new connection'));
  const got = await readN(s, 26);
  const ms = Date.now() - t0;
  assert.equal(got.toString(), 'through the new connection');
  // Bound: the client's liveness timeout plus one tick and a resume; the server's own (3 min) plays no part.
  assert.ok(ms < clientDead + 1000, `resumed after ${ms} ms`);
  assert.equal(r.proxy!.halfOpen.length, 1);
  await waitFor(() => r.proxy!.halfOpen[0]!.destroyed, 2000, 'the server dropped its old socket');
});

test('seed-003 regression: a full replay buffer applies backpressure, then fails with a distinct error — never EOF', async (t) => {
  const window = 256 * 1024;
  const r = await rig({ proxySeed: 3, server: { window, detachTimeoutMs: 60_000 } });
  t.after(() => r.close());
  const { c } = await r.pair({ window, pingMs: 50, deadMs: 200, resumeForMs: 1500 });
  r.proxy!.refuse = true; // the peer never comes back
  r.proxy!.inject('blackhole');
  let accepted = 0;
  let blockedAt = -1;
  for (let i = 0; i < 64 && blockedAt < 0; i++) {
    const ok = c.write(randomBytes(16 * 1024));
    accepted += 16 * 1024;
    if (!ok) blockedAt = accepted;
  }
  assert.ok(blockedAt > 0, 'write() reports backpressure');
  await new Promise((res) => setTimeout(res, 100));
  assert.ok(c.unacked <= window, `unacked ${c.unacked} within the window`);
  let ended = false;
  c.on('end', () => { ended = true; });
  const [err] = (await once(c, 'error')) as [Error & { code?: string }];
  assert.equal(err.code, 'DK_LINK_SESSION_LOST');
  assert.equal(ended, false, 'no silent EOF');
});

test('seed-003 regression: tampered records are never delivered; the stream resumes and stays exact', async (t) => {
  const r = await rig({ proxySeed: 4 });
  t.after(() => r.close());
  // A window well below the 8 MiB sent, so the writes below wait for the transfer and the flips
  // land all through it (with the whole transfer inside the window they would all come at once).
  const { c, s } = await r.pair({ window: 2 * 1024 * 1024 });
  let rejected = 0;
  s.on('protocolError', () => rejected++);
  c.on('protocolError', () => rejected++);
  const p = new Pattern(9);
  const total = 8 * 1024 * 1024;
  const got = readN(s, total);
  for (let off = 0; off < total; off += 256 * 1024) {
    if (off % (1024 * 1024) === 0) r.proxy!.inject('flip');
    if (!c.write(p.slice(off, 256 * 1024))) await once(c, 'drain');
  }
  const data = await got;
  assert.ok(rejected >= 1, 'flipped records were detected');
  assert.equal(p.check(0, data), -1, 'what was delivered is exactly what was sent');
});

test('seed-003 regression: a replayed or stale resume is refused and the live connection is undisturbed', async (t) => {
  const r = await rig();
  t.after(() => r.close());
  const { c, s } = await r.pair();
  const epoch = s.epoch;
  const attaches = s.stats.attaches;
  const attempt = async (makeProof: (cn: Buffer, sn: Buffer) => Buffer): Promise<boolean> => {
    const sock = connect({ host: '127.0.0.1', port: r.port });
    await once(sock, 'connect');
    const cn = randomBytes(16);
    sock.write(resumeHello(c.secrets.sessionId, cn));
    const [ch] = (await once(sock, 'data')) as [Buffer];
    sock.write(makeProof(cn, ch.subarray(1, 17)));
    const closed = await Promise.race([once(sock, 'close').then(() => true), new Promise((res) => setTimeout(() => res(false), 1000))]);
    sock.destroy();
    return closed as boolean;
  };
  // A proof captured from another exchange (another server nonce) is a replay.
  const captured = resumeProof(c.secrets, randomBytes(16), randomBytes(16), epoch + 5, 0);
  assert.equal(await attempt(() => captured), true, 'replayed proof: connection closed');
  // A fresh, correct proof for an epoch that is not newer is stale.
  assert.equal(await attempt((cn, sn) => resumeProof(c.secrets, cn, sn, epoch, s.received)), true, 'stale epoch: closed');
  assert.equal(s.epoch, epoch);
  assert.equal(s.stats.attaches, attaches, 'the live socket was never replaced');
  c.write(Buffer.from('still here'));
  assert.equal((await readN(s, 10)).toString(), 'still here');
});

test('a client that pins the wrong key is refused; the server learns nothing it can use', async (t) => {
  const r = await rig();
  t.after(() => r.close());
  const wrong = generateKeyPair().publicRaw;
  await assert.rejects(connectLink({ host: '127.0.0.1', port: r.port, serverKey: wrong, handshakeTimeoutMs: 2000 }),
    (e: Error & { code?: string; answered?: boolean }) => e.code === 'DK_LINK_SERVER_AUTH' && e.answered === true);
  assert.equal(r.streams.length, 0, 'no session was created');
});

test('a server that closes without answering (busy, starting) is not taken for a wrong key', async (t) => {
  const { server, port } = await listen((s) => { s.once('data', () => s.destroy()); });
  t.after(() => server.close());
  const right = generateKeyPair().publicRaw;
  await assert.rejects(connectLink({ host: '127.0.0.1', port, serverKey: right, handshakeTimeoutMs: 2000 }),
    (e: Error & { code?: string; answered?: boolean }) => e.code === 'DK_LINK_SERVER_AUTH' && e.answered === false);
});

test('a session the server forgot yields DK_LINK_SESSION_LOST on both ends, never EOF', async (t) => {
  const r = await rig({ proxySeed: 5, server: { detachTimeoutMs: 300 } });
  t.after(() => r.close());
  const { c, s } = await r.pair({ pingMs: 50, deadMs: 150, resumeForMs: 10_000 });
  let ended = false;
  c.on('end', () => { ended = true; });
  const serverErr = once(s, 'error');
  r.proxy!.refuse = true;
  r.proxy!.inject('reset');
  const [se] = (await serverErr) as [Error & { code?: string }];
  assert.equal(se.code, 'DK_LINK_SESSION_LOST');
  r.proxy!.refuse = false;
  const [ce] = (await once(c, 'error')) as [Error & { code?: string }];
  assert.equal(ce.code, 'DK_LINK_SESSION_LOST');
  assert.equal(ended, false);
});

test('half-close travels over the link: FIN one way, data the other, then both complete', async (t) => {
  const r = await rig();
  t.after(() => r.close());
  const { c, s } = await r.pair();
  c.end('request');
  const req = await new Promise<string>((res) => { let b = ''; s.on('data', (d: Buffer) => { b += d.toString(); }); s.on('end', () => res(b)); });
  assert.equal(req, 'request');
  s.end('response after FIN');
  const resp = await new Promise<string>((res) => { let b = ''; c.on('data', (d: Buffer) => { b += d.toString(); }); c.on('end', () => res(b)); });
  assert.equal(resp, 'response after FIN');
  await waitFor(() => r.server.sessions.size === 0 || [...r.server.sessions.values()].every((h) => h.completed), 3000, 'completion');
});

test('a session whose last bytes are unacknowledged is kept, even after both sides ended', async (t) => {
  const r = await rig({ proxySeed: 6 });
  t.after(() => r.close());
  const { c, s } = await r.pair({ pingMs: 50, deadMs: 200 });
  s.resume();
  c.end('bye');
  await once(s, 'end'); // the server has the client's FIN
  r.proxy!.inject('blackhole'); // nothing the client sends back (its ACKs) gets through now
  s.end('last words');
  await new Promise((res) => setTimeout(res, 100));
  assert.equal(s.destroyed, false, 'not closed while "last words" is unacknowledged');
  assert.equal(r.server.sessions.size, 1, 'and not forgotten');
  let got = '';
  c.on('data', (d: Buffer) => { got += d.toString(); });
  await once(c, 'end'); // the client notices the dead connection, resumes, gets the bytes
  assert.equal(got, 'last words');
  await waitFor(() => s.destroyed, 3000, 'the server closes once everything is acknowledged');
});

test('writes made while the stream is corked leave as one record, not one each', async (t) => {
  const r = await rig();
  t.after(() => r.close());
  const { c, s } = await r.pair();
  const parts = Array.from({ length: 64 }, () => randomBytes(100));
  const before = s.stats.recordsIn;
  const got = readN(s, 6400);
  c.cork();
  for (const p of parts) c.write(p);
  c.uncork();
  assert.deepEqual(await got, Buffer.concat(parts));
  // The server may also see a PING or an ACK in that time; 64 writes made one DATA record.
  assert.ok(s.stats.recordsIn - before <= 3, `records for 64 corked writes: ${s.stats.recordsIn - before}`);
});

test('the writes of one event become one record, and the records one event makes leave in one system call', async (t) => {
  const r = await rig();
  t.after(() => r.close());
  let sock: Socket | null = null;
  const { c, s } = await r.pair({ dial: () => (sock = connect({ host: '127.0.0.1', port: r.port, noDelay: true })) });
  // Count the socket's writes from here on: each _write or _writev is one system call.
  type Writes = (this: Socket, ...a: unknown[]) => void;
  const raw = sock! as unknown as { _write: Writes; _writev: Writes };
  let writes = 0;
  const w = raw._write.bind(sock!), wv = raw._writev.bind(sock!);
  raw._write = (...a) => { writes++; w(...a); };
  raw._writev = (...a) => { writes++; wv(...a); };
  const got = readN(s, 3);
  const recordsBefore = s.stats.recordsIn;
  // Three writes in one turn, not corked by the caller (the mux of a gateway forwarding OPN, then
  // DAT, from one read does this): one record, sealed and sent when the turn ends.
  c.write(Buffer.from('a'));
  c.write(Buffer.from('b'));
  c.write(Buffer.from('c'));
  assert.equal(writes, 0, 'nothing is written before the turn ends');
  assert.equal((await got).toString(), 'abc');
  assert.equal(s.stats.recordsIn - recordsBefore, 1, `records for three writes: ${s.stats.recordsIn - recordsBefore}`);
  assert.equal(writes, 1, `socket writes: ${writes}`);
  // Data and the end of the stream in one turn: a DATA and a FIN record, one system call.
  writes = 0;
  const got2 = readN(s, 1);
  c.write(Buffer.from('d'));
  c.end();
  assert.equal((await got2).toString(), 'd');
  s.resume();
  await once(s, 'end');
  assert.equal(writes, 1, `socket writes for data then FIN in one turn: ${writes}`);
});

test('a sender whose window is smaller than the ACK interval asks for its ACKs instead of waiting for the ACK timer', async (t) => {
  // The receiver acknowledges by itself only every 1 MiB, or when its timer fires (10 minutes here).
  const r = await rig({ server: { ackDelayMs: 600_000 } });
  t.after(() => r.close());
  const { c, s } = await r.pair({ window: 64 * 1024 });
  const data = randomBytes(512 * 1024);
  const got = readN(s, data.length);
  c.write(data);
  let guard: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    guard = setTimeout(() => reject(new Error(`stalled with ${c.unacked} bytes unacknowledged after ${c.stats.ackRequests} ACK requests`)), 20_000);
  });
  try {
    assert.ok((await Promise.race([got, stalled])).equals(data), 'every byte arrives, in order');
  } finally {
    clearTimeout(guard);
  }
  // 512 KiB through a 64 KiB window: an ACK request at each half window.
  assert.ok(c.stats.ackRequests >= 8, `ACK requests: ${c.stats.ackRequests}`);
  assert.ok(c.unacked <= 64 * 1024);
});
