import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FailureLog } from '../../src/gateway/failure-log.ts';

function log(intervalMs = 60_000, maxSources = 100) {
  let now = 0;
  const lines: { source: string; count: number; reasons: Record<string, number>; first: boolean }[] = [];
  const l = new FailureLog({ intervalMs, maxSources, now: () => now, write: (f) => lines.push(f) });
  return { l, lines, advance: (ms: number) => { now += ms; } };
}

test('failure log: the first failure of a source is written at once, the rest as one line per interval', () => {
  const { l, lines, advance } = log();
  for (let i = 0; i < 10_000; i++) l.fail('10.0.0.1', 'bad_hmac');
  assert.equal(lines.length, 1, 'ten thousand failures, one line so far');
  assert.deepEqual(lines[0], { source: '10.0.0.1', count: 1, reasons: { bad_hmac: 1 }, first: true });
  advance(60_000);
  l.flush();
  assert.equal(lines.length, 2);
  assert.equal(lines[1]!.count, 9_999);
  assert.equal(lines[1]!.first, false);
  l.flush();
  assert.equal(lines.length, 2, 'nothing new, nothing written');
});

test('failure log: a source that went quiet for an interval is written at once again', () => {
  const { l, lines, advance } = log(1000);
  l.fail('a', 'x');
  advance(1000);
  l.fail('b', 'x'); // starts a new interval: "a" had no further failure and is forgotten
  l.fail('a', 'x');
  assert.deepEqual(lines.map((x) => [x.source, x.count, x.first]), [['a', 1, true], ['b', 1, true], ['a', 1, true]]);
});

test('failure log: sources and reasons are bounded; the excess is summed under "other"', () => {
  const { l, lines, advance } = log(1000, 3);
  for (let i = 0; i < 50; i++) l.fail(`10.0.0.${i}`, `reason${i}`);
  for (let i = 0; i < 40; i++) l.fail('10.0.0.0', `user${i}`);
  assert.equal(lines.length, 3, 'one immediate line for each of the first 3 sources only');
  advance(1000);
  l.flush();
  const other = lines.find((x) => x.source === 'other');
  assert.equal(other?.count, 47);
  const first = lines.find((x) => x.source === '10.0.0.0' && !x.first)!;
  assert.equal(first.count, 40);
  assert.ok(Object.keys(first.reasons).length <= 17, `reasons kept per source are capped (${Object.keys(first.reasons).length})`);
  assert.equal(first.reasons.other, 40 - 16);
});

test('failure log: tick() writes the last interval\'s count after the failures stop', () => {
  const { l, lines, advance } = log(1000);
  for (let i = 0; i < 5; i++) l.fail('a', 'x');
  advance(999);
  l.tick();
  assert.equal(lines.length, 1, 'not before the interval is over');
  advance(1);
  l.tick();
  assert.deepEqual(lines.map((x) => [x.count, x.first]), [[1, true], [4, false]]);
});
