/**
 * LinkSession.holdAcks/releaseAcks alone (fake clock, records through queues): what a migration
 * relies on (client.ts, migrateLink) — while held, no ACK says more than the proof did.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Rec } from '../../src/link/record.ts';
import { ACK_EVERY, LinkSession } from '../../src/link/session.ts';
import { FakeClock } from './fake-clock.ts';
import { QueueSink } from './queue-sink.ts';

function session(clock: FakeClock, events: string[]): LinkSession {
  return new LinkSession({
    window: 8 * ACK_EVERY, ackDelayMs: 5, clock,
    deliver: () => undefined,
    peerEnded: () => events.push('peerEnded'),
    finAcknowledged: () => events.push('finAcknowledged'),
    completed: () => events.push('completed'),
    reset: () => events.push('reset'),
    acknowledged: () => undefined,
  });
}

function setup() {
  const clock = new FakeClock();
  const aEvents: string[] = [];
  const bEvents: string[] = [];
  const a = session(clock, aEvents);
  const b = session(clock, bEvents);
  const ab = new QueueSink();
  const ba = new QueueSink();
  a.attach(ab, 0);
  b.attach(ba, 0);
  /** Carries records both ways until both queues are empty; returns the ACK positions b sent. */
  const flush = (): number[] => {
    const acks: number[] = [];
    while (ab.records.length > 0 || ba.records.length > 0) {
      for (const r of ab.records.splice(0)) b.receive(r);
      for (const r of ba.records.splice(0)) {
        if (r.type === Rec.ACK) acks.push(r.recv);
        a.receive(r);
      }
      a.pump();
      b.pump();
    }
    return acks;
  };
  return { clock, a, b, flush, aEvents, bEvents };
}

test('held ACKs report at most what was received at holdAcks, whatever asks for one; release acknowledges the rest', () => {
  const { clock, a, b, flush } = setup();
  a.append(randomBytes(1000));
  a.pump();
  flush();
  clock.advance(10);
  flush();
  assert.equal(a.unacked, 0);
  b.holdAcks();
  a.append(randomBytes(3 * ACK_EVERY)); // past ACK_EVERY: an immediate ACK, and a PING asking for one
  a.pump();
  const acks = flush();
  a.ping();
  acks.push(...flush());
  clock.advance(10); // the ACK timer
  acks.push(...flush());
  assert.equal(b.received, 1000 + 3 * ACK_EVERY);
  assert.ok(acks.length > 0, 'ACKs were sent while held');
  assert.ok(acks.every((n) => n <= 1000), `held ACKs said ${acks.join(', ')}`);
  assert.equal(a.unacked, 3 * ACK_EVERY);
  b.releaseAcks();
  assert.deepEqual(flush(), [1000 + 3 * ACK_EVERY]);
  assert.equal(a.unacked, 0);
  b.releaseAcks(); // not held: nothing more
  assert.deepEqual(flush(), []);
});

test('a session whose last FIN arrives while ACKs are held completes only once they are released', () => {
  const { a, b, flush, aEvents, bEvents } = setup();
  b.end();
  b.pump();
  flush();
  assert.deepEqual(bEvents, ['finAcknowledged']);
  b.holdAcks();
  a.end();
  a.pump();
  flush();
  assert.ok(bEvents.includes('peerEnded'));
  assert.ok(!bEvents.includes('completed'), 'not complete while the peer has not heard its FIN arrived');
  assert.ok(!aEvents.includes('finAcknowledged'));
  b.releaseAcks();
  flush();
  assert.ok(bEvents.includes('completed'));
  assert.ok(aEvents.includes('finAcknowledged') && aEvents.includes('completed'));
});
