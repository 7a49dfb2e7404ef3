import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RecvWindow } from '../../src/mux/window.ts';

const K = 1024;

/** A clock the test moves by hand (ms). */
function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 0;
  return { now: () => t, advance: (ms) => { t += ms; } };
}

/**
 * A sender with unlimited data that always spends all its credit, and a consumer that takes
 * every byte at once; each grant reaches the sender `delay` ms after it was made. Returns the
 * window after each grant.
 */
function windowLimitedFlow(w: RecvWindow, c: ReturnType<typeof clock>, delay: number, grants: number): number[] {
  let credit = w.window;
  const seen: number[] = [];
  for (let i = 0; i < grants; i++) {
    w.receive(1, credit); // the whole allowance arrives at once: the sender then waits
    const grant = w.consumed(w.received);
    assert.ok(grant > 0, 'a consumer that took everything grants credit');
    seen.push(w.window);
    c.advance(delay);
    credit = grant;
  }
  return seen;
}

test('window: a flow that waits for credit doubles its window at each grant, up to the max', () => {
  const c = clock();
  const w = new RecvWindow(256 * K, 4096 * K, c.now);
  const seen = windowLimitedFlow(w, c, 1, 8);
  // The first grant has no delay sample yet; from the second on, every grant doubles.
  assert.deepEqual(seen.map((b) => b / K), [256, 512, 1024, 2048, 4096, 4096, 4096, 4096]);
  assert.equal(w.delay, 1, 'the credit round trip is measured');
});

test('window: without a max above the window it never grows', () => {
  const c = clock();
  const w = new RecvWindow(256 * K, 256 * K, c.now);
  assert.deepEqual(windowLimitedFlow(w, c, 1, 5).map((b) => b / K), [256, 256, 256, 256, 256]);
});

test('window: a consumer that falls behind keeps the window as it is', () => {
  const c = clock();
  const w = new RecvWindow(256 * K, 4096 * K, c.now);
  let credit = w.window;
  for (let i = 0; i < 10; i++) {
    w.receive(1, credit); // the sender spends all its credit at once, as in the flow above
    // The socket took only part at first (its buffer was full), the rest on 'drain' right after.
    assert.equal(w.consumed(w.received - 200 * K), 0);
    credit = w.consumed(w.received);
    assert.ok(credit > 0);
    c.advance(1);
  }
  assert.equal(w.delay, 1, 'the timing alone would have grown it');
  assert.equal(w.window, 256 * K);
});

test('window: a flow whose source is slower than the path keeps the window as it is', () => {
  const c = clock();
  const w = new RecvWindow(256 * K, 4096 * K, c.now);
  // The source sends 28 KiB per ms and never waits for credit: a window lasts 9 ms. Timing the
  // bytes past a grant's old limit would take that for the credit round trip and grow the window.
  let taken = 0;
  for (let ms = 0; ms < 500; ms++) {
    w.receive(1, 28 * K);
    taken += 28 * K;
    w.consumed(taken);
    c.advance(1);
  }
  assert.equal(w.delay, Infinity, 'a sender that never waited gives no delay sample');
  assert.equal(w.window, 256 * K);
});

test('window: a sender past its credit is a protocol error, after the window grew too', () => {
  const c = clock();
  const w = new RecvWindow(64 * K, 1024 * K, c.now);
  windowLimitedFlow(w, c, 1, 4);
  assert.ok(w.window > 64 * K);
  const left = w.window; // the last grant made the allowance a full window again
  assert.throws(() => w.receive(7, left + 1), (e: Error & { code?: string }) => e.code === 'DK_FLOW_CONTROL');
});

test('window property: whatever the timing, the receiver never owes more than its window, and the window stays within its bounds', () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 64 }).map((k) => k * K),
    fc.integer({ min: 1, max: 16 }),
    fc.array(fc.record({ send: fc.nat({ max: 300 * K }), take: fc.nat({ max: 300 * K }), ms: fc.double({ min: 0, max: 5, noNaN: true }) }), { maxLength: 200 }),
    (initial, factor, steps) => {
      const c = clock();
      const w = new RecvWindow(initial, initial * factor, c.now);
      let credit = initial;
      let taken = 0;
      for (const s of steps) {
        const n = Math.min(s.send, credit); // a sender that respects its credit
        w.receive(1, n);
        credit -= n;
        taken = Math.min(w.received, taken + s.take);
        credit += w.consumed(taken);
        c.advance(s.ms);
        // Bytes the receiver may yet have to hold: received but not taken, plus the credit out.
        assert.ok(w.received - taken + credit <= w.window, `owes ${w.received - taken + credit} > window ${w.window}`);
        assert.ok(w.window >= initial && w.window <= initial * factor);
      }
    },
  ), { numRuns: 300 });
});
