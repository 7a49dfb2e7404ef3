import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TrafficSeries } from '../../src/gateway/traffic-series.ts';

test('rates per second over each interval, sampled only when the interval has passed', () => {
  const s = new TrafficSeries(5000, 10);
  assert.equal(s.observe(0, { up: 0, down: 0, sessions: 0 }), false, 'the first call only sets the baseline');
  assert.equal(s.observe(4999, { up: 100, down: 100, sessions: 1 }), false);
  assert.equal(s.observe(5000, { up: 50_000, down: 10_000, sessions: 2 }), true);
  assert.deepEqual(s.samples(), [{ t: 5000, up: 10_000, down: 2000, sessions: 2 }]);
  assert.equal(s.observe(15_000, { up: 50_000, down: 30_000, sessions: 0 }), true, 'a late sweep: the rate is over the real interval');
  assert.deepEqual(s.latest(), { t: 15_000, up: 0, down: 2000, sessions: 0 });
});

test('the ring keeps the newest `capacity` samples, oldest first', () => {
  const s = new TrafficSeries(1, 4);
  s.observe(0, { up: 0, down: 0, sessions: 0 });
  for (let i = 1; i <= 11; i++) s.observe(i, { up: i * 1000, down: 0, sessions: i });
  const got = s.samples();
  assert.equal(got.length, 4);
  assert.deepEqual(got.map((x) => x.sessions), [8, 9, 10, 11]);
  assert.equal(s.latest()?.sessions, 11);
  assert.throws(() => new TrafficSeries(0, 1), RangeError);
});
