import assert from 'node:assert/strict';
import { test } from 'node:test';
import { csrfMatches, WebSessions } from '../../src/gateway/dashboard/web-sessions.ts';

const clock = (): { now: () => number; advance(ms: number): void } => {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => { t += ms; } };
};

test('a session lives while used, ends when idle or too old, and is forgotten', () => {
  const c = clock();
  const w = new WebSessions({ idleMs: 1000, maxAgeMs: 5000, now: c.now });
  const { session } = w.create('alice');
  assert.notEqual(session.id, session.csrf);
  assert.equal(Buffer.from(session.id, 'base64url').length, 16);
  for (let i = 0; i < 4; i++) {
    c.advance(900);
    assert.equal(w.get(session.id)?.user, 'alice', 'used within the idle time');
  }
  assert.equal(w.expiresAt(session), 1_000_000 + 3600 + 1000, 'the idle end comes first');
  c.advance(900);
  assert.ok(w.get(session.id));
  assert.equal(w.expiresAt(session), 1_000_000 + 5000, 'now the absolute end comes first');
  c.advance(600);
  assert.equal(w.get(session.id), null, 'past the absolute age');
  assert.equal(w.size, 0);
  const s2 = w.create('alice').session;
  assert.equal(w.alive(s2.id), true);
  c.advance(1001);
  assert.equal(w.alive(s2.id), false);
  assert.equal(w.get(s2.id), null, 'idle too long');
});

test('the table is capped in total and per user; the least recently used goes first', () => {
  const w = new WebSessions({ max: 3, maxPerUser: 2 });
  const a1 = w.create('a').session;
  const a2 = w.create('a').session;
  w.get(a1.id); // a1 is now the more recently used
  const a3 = w.create('a');
  assert.deepEqual(a3.evicted, [a2.id], 'the user\'s least recently used session made room');
  const b1 = w.create('b');
  assert.deepEqual(b1.evicted, []);
  const c1 = w.create('c');
  assert.equal(c1.evicted.length, 1);
  assert.equal(w.size, 3);
  assert.equal(w.get(a1.id), null, 'the least recently used of all went');
  assert.deepEqual(w.deleteUser('a'), [a3.session.id]);
  assert.equal(w.size, 2);
});

test('sweep forgets expired sessions; csrf tokens compare exactly', () => {
  const c = clock();
  const w = new WebSessions({ idleMs: 100, now: c.now });
  const s = w.create('x').session;
  w.create('y');
  c.advance(101);
  assert.equal(w.sweep().length, 2);
  const full = new WebSessions({ max: 2, idleMs: 100, now: c.now });
  const old = full.create('p').session;
  const live = full.create('q').session;
  c.advance(60);
  full.get(live.id);
  c.advance(60);
  assert.deepEqual(full.create('r').evicted, [old.id], 'an expired session makes room before a live one');
  assert.equal(full.alive(live.id), true);
  assert.equal(csrfMatches(s, s.csrf), true);
  assert.equal(csrfMatches(s, undefined), false);
  assert.equal(csrfMatches(s, s.csrf.slice(1)), false);
  assert.equal(csrfMatches(s, `${s.csrf.slice(0, -1)}${s.csrf.endsWith('A') ? 'B' : 'A'}`), false);
});
