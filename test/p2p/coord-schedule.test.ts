import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { rttEstimate, schedule } from '../../src/p2p/coord-schedule.ts';

test('property: each side starts at the same moment once its one-way delay is added (to rounding)', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 1500 }), fc.integer({ min: 0, max: 1500 }), (rttA, rttB) => {
    const p = schedule({ rttA, rttB });
    assert.ok(Math.abs(rttA / 2 + p.delayA - (rttB / 2 + p.delayB)) <= 1, JSON.stringify({ rttA, rttB, p }));
    assert.ok(p.delayA >= 0 && p.delayB >= 0);
    // The slower side's `go` has arrived before the start.
    assert.ok(p.startMs >= Math.max(rttA, rttB) / 2);
  }));
});

test('examples: the least margin on a fast path; the start capped on a slow one; nonsense RTTs read as 0', () => {
  assert.deepEqual(schedule({ rttA: 0, rttB: 0 }), { delayA: 20, delayB: 20, startMs: 20 });
  assert.deepEqual(schedule({ rttA: 100, rttB: 20 }), { delayA: 100, delayB: 140, startMs: 150 });
  assert.deepEqual(schedule({ rttA: 5_000, rttB: 0 }), { delayA: 0, delayB: 2_000, startMs: 2_000 });
  assert.deepEqual(schedule({ rttA: Number.NaN, rttB: -4 }), { delayA: 20, delayB: 20, startMs: 20 });
});

test('the RTT estimate is the smallest sample (queueing only adds delay)', () => {
  assert.equal(rttEstimate([5, 3, 9]), 3);
  assert.equal(rttEstimate([]), 0);
});
