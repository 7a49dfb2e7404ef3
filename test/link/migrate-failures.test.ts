import assert from 'node:assert/strict';
import { test } from 'node:test';
import { migrateLink, ResumeError } from '../../src/link/index.ts';
import { rig } from './helpers.ts';
import { dialTo, roundTrip, tcpServer, until } from './migrate-helpers.ts';

/** Asserts that `p` rejects with a ResumeError of `reason`; returns it. */
async function rejectsWith(p: Promise<unknown>, reason: string): Promise<ResumeError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ResumeError, `a ResumeError, got ${String(e)}`);
    assert.equal(e.reason, reason, e.message);
    return e;
  }
  assert.fail(`resolved; expected a rejection (${reason})`);
}

test('migration to a transport that never answers: rejects (transport, timed out), the old transport still carries data', async (t) => {
  const r = await rig();
  const silent = await tcpServer((sock) => sock.resume()); // reads and discards, never answers
  t.after(() => { r.close(); silent.close(); });
  const { c, s } = await r.pair();
  await roundTrip(c, s, 'before');
  const sock = dialTo(silent.port);
  const err = await rejectsWith(migrateLink(c, sock, { timeoutMs: 300 }), 'transport');
  assert.match(err.message, /timed out after \d+ ms/);
  assert.ok(sock.destroyed, 'the new transport is destroyed');
  assert.ok(c.attached);
  await roundTrip(c, s, 'after');
  assert.equal(c.stats.attaches, 1, 'still on the first transport');
  assert.equal(s.stats.attaches, 1);
  await until(() => silent.conns.size === 0, 'the silent server sees its connection closed');
});

for (const [what, answer] of [
  ['an HTTP server', Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')],
  // Looks like a challenge (02 sn), then a reply that is not authentic: the proof went out and was held.
  ['something that answers with a challenge and a forged reply', Buffer.concat([Buffer.from([2]), Buffer.alloc(16, 7), Buffer.alloc(64, 9)])],
] as const) {
  test(`migration to ${what}: rejects (not-authentic), the old transport still carries data and acknowledges`, async (t) => {
    const r = await rig();
    const liar = await tcpServer((sock) => { sock.once('data', () => sock.write(answer)); });
    t.after(() => { r.close(); liar.close(); });
    const { c, s } = await r.pair();
    const sock = dialTo(liar.port);
    await rejectsWith(migrateLink(c, sock), 'not-authentic');
    assert.ok(sock.destroyed, 'the new transport is destroyed');
    assert.ok(c.attached);
    // Both sides' unacked drop to 0: the client's acknowledgements are not held back any more.
    await roundTrip(c, s, 'after');
    assert.equal(c.stats.attaches, 1);
  });
}

test('migration while the resume loop runs: rejects at once (busy), the loop then resumes', async (t) => {
  const r = await rig({ proxySeed: 1 });
  t.after(() => r.close());
  const { c, s } = await r.pair({ resumeForMs: 30_000 });
  const failed: ResumeError[] = [];
  c.on('resumeFailed', (e: ResumeError) => failed.push(e));
  r.proxy!.refuse = true; // the loop's attempts fail until we let them through
  r.proxy!.inject('reset');
  await until(() => failed.length > 0, 'a failed resume attempt of the loop');
  const sock = dialTo(r.port);
  await rejectsWith(migrateLink(c, sock), 'busy');
  assert.ok(sock.destroyed, 'the new transport is destroyed');
  r.proxy!.refuse = false;
  await until(() => c.attached, 'the loop resumes');
  await roundTrip(c, s, 'after the loop resumed');
});

test('a second migration while one runs: rejects at once (busy); the first goes on', async (t) => {
  const r = await rig();
  const silent = await tcpServer((sock) => sock.resume()); // reads and discards, never answers
  t.after(() => { r.close(); silent.close(); });
  const { c, s } = await r.pair();
  const first = migrateLink(c, dialTo(silent.port), { timeoutMs: 500 });
  const direct = dialTo(r.port);
  await rejectsWith(migrateLink(c, direct), 'busy');
  assert.ok(direct.destroyed);
  await rejectsWith(first, 'transport');
  // Once the first is over, a migration can run.
  await migrateLink(c, dialTo(r.port));
  assert.equal(c.stats.attaches, 2);
  await roundTrip(c, s, 'after the move');
});

test('the stream destroyed during a migration: rejects (session-ended) without waiting for the timeout', async (t) => {
  const r = await rig();
  const silent = await tcpServer((sock) => sock.resume()); // reads and discards, never answers
  t.after(() => { r.close(); silent.close(); });
  const { c } = await r.pair();
  c.on('error', () => undefined);
  const sock = dialTo(silent.port);
  const p = migrateLink(c, sock, { timeoutMs: 60_000 });
  await until(() => silent.conns.size === 1, 'the new transport connected');
  c.destroy();
  await rejectsWith(p, 'session-ended');
  assert.ok(sock.destroyed);
  await rejectsWith(migrateLink(c, dialTo(r.port)), 'session-ended');
});
