import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventHub, sseEvent, type EventSink } from '../../src/gateway/dashboard/event-hub.ts';

class Sink implements EventSink {
  readonly got: string[] = [];
  closed = false;
  hold: (() => void) | null = null;
  stall = false;
  write(text: string): Promise<void> {
    this.got.push(text);
    if (!this.stall) return Promise.resolve();
    return new Promise((r) => { this.hold = r; });
  }
  close(): void { this.closed = true; }
}
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

test('state is sent at once, then only when it changed; a heartbeat when quiet', async () => {
  let t = 0;
  let state: unknown = { n: 1 };
  const hub = new EventHub({ snapshot: () => state, heartbeatMs: 15_000, tickMs: 60_000, now: () => t });
  const sink = new Sink();
  const sub = hub.add('s1', 'alice', sink);
  assert.ok(!('refused' in sub));
  await flush();
  assert.deepEqual(sink.got, [sseEvent('state', '{"n":1}')]);
  t = 1000;
  hub.tick();
  await flush();
  assert.equal(sink.got.length, 1, 'unchanged: nothing sent');
  state = { n: 2 };
  hub.tick();
  await flush();
  assert.equal(sink.got.at(-1), 'event: state\ndata: {"n":2}\n\n');
  t = 16_001;
  hub.tick();
  await flush();
  assert.equal(sink.got.at(-1), ': heartbeat\n\n');
  sub.remove();
  assert.equal(hub.size, 0);
});

test('a stream still writing is skipped, not queued; a failed write ends it', async () => {
  let n = 0;
  const hub = new EventHub({ snapshot: () => ({ n: ++n }), tickMs: 60_000 });
  const slow = new Sink();
  slow.stall = true;
  hub.add('s1', 'alice', slow);
  for (let i = 0; i < 5; i++) hub.tick();
  assert.equal(slow.got.length, 1, 'one write in flight, no backlog');
  slow.hold?.();
  await flush();
  hub.tick();
  assert.equal(slow.got.length, 2);
  const bad = new Sink();
  bad.write = (text) => { bad.got.push(text); return Promise.reject(new Error('gone')); };
  hub.add('s2', 'bob', bad);
  await flush();
  assert.equal(bad.closed, true);
  assert.equal(hub.size, 1);
  hub.closeAll();
  assert.equal(slow.closed, true);
});

test('caps per user and in total; logout and a removed user end streams', async () => {
  let gone = false;
  const hub = new EventHub({ snapshot: (u) => (u === 'carol' && gone ? null : {}), maxTotal: 3, maxPerUser: 2, tickMs: 60_000 });
  const a = [new Sink(), new Sink(), new Sink()];
  hub.add('sa', 'alice', a[0]!);
  hub.add('sa', 'alice', a[1]!);
  assert.deepEqual(hub.add('sa2', 'alice', a[2]!), { refused: 'user' });
  assert.equal(hub.refusal('alice'), 'user');
  const c = new Sink();
  hub.add('sc', 'carol', c);
  assert.deepEqual(hub.add('sb', 'bob', new Sink()), { refused: 'total' });
  hub.closeSessions(['sa']);
  assert.equal(a[0]!.closed && a[1]!.closed, true);
  gone = true;
  await flush();
  hub.tick();
  assert.equal(c.closed, true, 'the snapshot said the user is gone');
  assert.equal(hub.size, 0);
});

test('a stream ends with its web session (expiry)', async () => {
  const live = new Set(['s1', 's2']);
  const hub = new EventHub({ snapshot: () => ({}), alive: (id) => live.has(id), tickMs: 60_000 });
  const [a, b] = [new Sink(), new Sink()];
  hub.add('s1', 'alice', a);
  hub.add('s2', 'alice', b);
  await flush();
  live.delete('s1');
  hub.tick();
  assert.deepEqual([a.closed, b.closed, hub.size], [true, false, 1]);
  hub.closeAll();
});
