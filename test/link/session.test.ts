/**
 * LinkSession as a pure state machine: records in, records out, a fake clock; no transport, no
 * crypto. Two sessions are joined by sinks that queue records; flush() delivers them in order.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { ResumeError } from '../../src/link/errors.ts';
import { COMPAT_DATA, MAX_DATA, Rec } from '../../src/link/record.ts';
import { ACK_EVERY, LinkSession } from '../../src/link/session.ts';
import { FakeClock } from './fake-clock.ts';
import { QueueSink } from './queue-sink.ts';

interface End {
  s: LinkSession;
  got: Buffer[];
  events: string[];
}

function end(clock: FakeClock, o: { window?: number; ackDelayMs?: number; recordData?: number } = {}): End {
  const got: Buffer[] = [];
  const events: string[] = [];
  const s = new LinkSession({
    window: o.window ?? 8 * 1024 * 1024, ackDelayMs: o.ackDelayMs ?? 5, clock, ...(o.recordData ? { recordData: o.recordData } : {}),
    deliver: (pieces) => { for (const p of pieces) got.push(p); },
    peerEnded: () => events.push('peerEnded'),
    finAcknowledged: () => events.push('finAcknowledged'),
    completed: () => events.push('completed'),
    reset: () => events.push('reset'),
    acknowledged: () => events.push('acknowledged'),
  });
  return { s, got, events };
}

/** Two sessions attached to each other through queues; flush() carries records both ways until both queues are empty. */
function pair(clock: FakeClock, o: { window?: number; ackDelayMs?: number; recordData?: number } = {}): { a: End; b: End; ab: QueueSink; ba: QueueSink; flush: () => void } {
  const a = end(clock, o);
  const b = end(clock, o);
  const ab = new QueueSink();
  const ba = new QueueSink();
  a.s.attach(ab, 0);
  b.s.attach(ba, 0);
  return {
    a, b, ab, ba,
    flush: () => {
      while (ab.records.length > 0 || ba.records.length > 0) {
        for (const r of ab.records.splice(0)) b.s.receive(r);
        for (const r of ba.records.splice(0)) a.s.receive(r);
        a.s.pump();
        b.s.pump();
      }
    },
  };
}

test('session: bytes go out as DATA records of at most COMPAT_DATA at their positions, then FIN; both ends complete', () => {
  const clock = new FakeClock();
  const { a, b, ab, flush } = pair(clock);
  const data = randomBytes(3 * COMPAT_DATA + 100);
  a.s.append(data);
  a.s.end();
  a.s.pump();
  assert.deepEqual(ab.types(), [Rec.DATA, Rec.DATA, Rec.DATA, Rec.DATA, Rec.FIN]);
  assert.deepEqual(ab.records.map((r) => (r.type === Rec.DATA ? r.offset : -1)), [0, COMPAT_DATA, 2 * COMPAT_DATA, 3 * COMPAT_DATA, -1]);
  flush();
  assert.deepEqual(Buffer.concat(b.got), data);
  assert.equal(b.s.received, data.length + 1, 'FIN counts as one position');
  assert.deepEqual(b.events, ['peerEnded']);
  assert.deepEqual(a.events.filter((e) => e !== 'acknowledged'), ['finAcknowledged']);
  b.s.end();
  b.s.pump();
  flush();
  assert.ok(a.s.complete && b.s.complete);
  assert.equal(a.s.unacked, 0);
});

test('session: ACK policy — at once after ACK_EVERY bytes, else ackDelayMs after the first unacknowledged byte (fake clock); duplicates at once', () => {
  const clock = new FakeClock();
  const { a, b, ab, ba } = pair(clock, { ackDelayMs: 5 });
  a.s.append(randomBytes(100));
  a.s.pump();
  for (const r of ab.records.splice(0)) b.s.receive(r);
  assert.equal(ba.records.length, 0, 'no ACK yet');
  clock.advance(4);
  assert.equal(ba.records.length, 0, 'not before ackDelayMs');
  clock.advance(1);
  assert.deepEqual(ba.records.splice(0), [{ type: Rec.ACK, recv: 100 }]);
  clock.advance(100);
  assert.equal(ba.records.length, 0, 'one ACK per batch: the timer is not left running');
  // A full ACK_EVERY is acknowledged without waiting. (As before the split, that ACK is sent while
  // the record that crossed the mark is being taken: it reports the position before that record.)
  a.s.append(randomBytes(ACK_EVERY));
  a.s.pump();
  for (const r of ab.records.splice(0)) b.s.receive(r);
  assert.deepEqual(ba.records.splice(0), [{ type: Rec.ACK, recv: 100 + ACK_EVERY - COMPAT_DATA }]);
  // A duplicate (a retransmission the peer already had) is acknowledged at once and not delivered again.
  const delivered = b.got.length;
  b.s.receive({ type: Rec.DATA, offset: 0, data: [Buffer.alloc(100)] });
  assert.equal(b.got.length, delivered);
  assert.equal(b.s.stats.duplicatesIn, 1);
  assert.deepEqual(ba.records.splice(0), [{ type: Rec.ACK, recv: 100 + ACK_EVERY }]);
  // A PING is answered with the ACK owed, then a PONG.
  a.s.append(randomBytes(10));
  a.s.pump();
  for (const r of ab.records.splice(0)) b.s.receive(r);
  b.s.receive({ type: Rec.PING, stamp: 42 });
  assert.deepEqual(ba.records.splice(0), [{ type: Rec.ACK, recv: 110 + ACK_EVERY }, { type: Rec.PONG, stamp: 42 }]);
});

test('session: a sender with a window below ACK_EVERY asks for its ACK (PING) once half the window is unacknowledged', () => {
  const clock = new FakeClock();
  const window = 4 * COMPAT_DATA;
  const { a, ab } = pair(clock, { window });
  a.s.append(randomBytes(window));
  a.s.pump();
  assert.deepEqual(ab.types(), [Rec.DATA, Rec.DATA, Rec.PING, Rec.DATA, Rec.DATA]);
  assert.equal(a.s.stats.ackRequests, 1);
  assert.equal(a.s.room, 0, 'the window is full until an ACK');
  a.s.receive({ type: Rec.ACK, recv: window });
  assert.equal(a.s.room, window);
});

test('session: attach() to a new sink resends from what the peer reports; positions outside what we hold are a resume failure', () => {
  const clock = new FakeClock();
  const { a, b, ab, flush } = pair(clock);
  const data = randomBytes(2 * COMPAT_DATA);
  a.s.append(data);
  a.s.pump();
  ab.records.splice(1); // the second record is lost with the transport
  flush();
  assert.equal(b.s.received, COMPAT_DATA);
  a.s.detach();
  b.s.detach();
  assert.equal(a.s.attached, false);
  // Out of range: below what the peer acknowledged, or beyond what was sent.
  assert.throws(() => a.s.attach(new QueueSink(), 2 * COMPAT_DATA + 1), (e: ResumeError) => e.code === 'DK_LINK_RESUME' && e.reason === 'bad-position');
  assert.equal(a.s.attached, false, 'a refused position attaches nothing');
  // The second transport: each side starts from what the other has.
  const ab2 = new QueueSink();
  const ba2 = new QueueSink();
  a.s.attach(ab2, b.s.received);
  b.s.attach(ba2, a.s.received);
  a.s.pump();
  assert.deepEqual(ab2.records.map((r) => (r.type === Rec.DATA ? r.offset : -1)), [COMPAT_DATA]);
  for (const r of ab2.records.splice(0)) b.s.receive(r);
  assert.deepEqual(Buffer.concat(b.got), data);
  assert.equal(a.s.stats.retransmitted, COMPAT_DATA);
  assert.equal(a.s.stats.attaches, 2);
});

test('session: the epoch only moves forward; a stale one is a resume failure and changes nothing', () => {
  const clock = new FakeClock();
  const { s } = end(clock);
  assert.equal(s.epoch, 0);
  s.enterEpoch(1);
  s.enterEpoch(3);
  assert.throws(() => s.enterEpoch(3), (e: ResumeError) => e instanceof ResumeError && e.reason === 'stale-epoch');
  assert.throws(() => s.enterEpoch(2), (e: ResumeError) => e.reason === 'stale-epoch');
  assert.equal(s.epoch, 3);
});

test('session: records that break the protocol throw LinkProtocolError; CLOSE resets', () => {
  const clock = new FakeClock();
  const { a } = pair(clock);
  assert.throws(() => a.s.receive({ type: Rec.DATA, offset: 5, data: [Buffer.alloc(1)] }), { code: 'DK_LINK_PROTOCOL' });
  assert.throws(() => a.s.receive({ type: Rec.ACK, recv: 1 }), { code: 'DK_LINK_PROTOCOL' });
  assert.throws(() => a.s.receive({ type: Rec.FIN, offset: 3 }), { code: 'DK_LINK_PROTOCOL' });
  a.s.receive({ type: Rec.CLOSE });
  assert.deepEqual(a.events, ['reset']);
});

test('session: a detached session sends nothing and ignores records; RTT comes from the injected clock', () => {
  const clock = new FakeClock();
  const { a, ab } = pair(clock);
  a.s.ping();
  const ping = ab.records.pop();
  assert.deepEqual(ping, { type: Rec.PING, stamp: clock.now() });
  clock.advance(7);
  a.s.receive({ type: Rec.PONG, stamp: (ping as { stamp: number }).stamp });
  assert.equal(a.s.rttMs, 7);
  a.s.detach();
  a.s.append(Buffer.from('x'));
  a.s.pump();
  a.s.ping();
  assert.equal(ab.records.length, 0);
  const before = a.s.stats.recordsIn;
  a.s.receive({ type: Rec.DATA, offset: 0, data: [Buffer.from('y')] });
  assert.equal(a.s.stats.recordsIn, before);
  assert.equal(a.got.length, 0);
});

test('session: with recordData MAX_DATA a 64 KiB read and its 9 DK frame headers (65,590 bytes) leave as one record, by default as two', () => {
  const read = randomBytes(64 * 1024 + 9 * 6);
  for (const [recordData, records] of [[undefined, 2], [MAX_DATA, 1]] as const) {
    const clock = new FakeClock();
    const { a, b, ab, flush } = pair(clock, recordData ? { recordData } : {});
    a.s.append(read);
    a.s.pump();
    assert.equal(ab.records.length, records, `recordData ${recordData ?? 'default'}`);
    flush();
    assert.deepEqual(Buffer.concat(b.got), read);
  }
  assert.throws(() => end(new FakeClock(), { recordData: MAX_DATA + 1 }), RangeError);
});
