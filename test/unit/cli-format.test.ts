import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bytes, duration, MAX_ROWS, relative, table } from '../../src/cli/format.ts';

test('table: columns as wide as their widest cell, two spaces apart, no trailing blanks', () => {
  const out = table(['NAME', 'STATUS', 'NOTE'], [['home', 'online', 'x'], ['a-much-longer-name', 'offline', '']]);
  assert.equal(out, [
    'NAME                STATUS   NOTE',
    'home                online   x',
    'a-much-longer-name  offline',
    '',
  ].join('\n'));
});

test('table: control characters from the API cannot move the cursor or break a row', () => {
  const out = table(['A', 'B'], [['evil\u001b[2Jname\nnext', 'ok\u009b']]);
  assert.equal(out, 'A                  B\nevil?[2Jname?next  ok?\n');
});

test('table: at most MAX_ROWS rows, then a line that says how many more', () => {
  const rows = Array.from({ length: MAX_ROWS + 3 }, (_, i) => [String(i)]);
  const lines = table(['N'], rows).trimEnd().split('\n');
  assert.equal(lines.length, MAX_ROWS + 2);
  assert.equal(lines.at(-1), '… 3 more (use --json)');
});

test('durations, relative times and byte counts', () => {
  assert.deepEqual([0, 999, 45_000, 598_000, 7_500_000, 277_200_000].map(duration), ['0s', '1s', '45s', '9m58s', '2h05m', '3d05h']);
  const now = Date.parse('2026-12-01T10:00:00Z');
  assert.equal(relative('2026-12-01T10:09:58Z', now), 'in 9m58s');
  assert.equal(relative('2026-12-01T09:54:58Z', now), '5m02s ago');
  assert.equal(relative(null, now), '-');
  assert.equal(relative('not a time', now), '-');
  assert.deepEqual([0, 512, 1536, 5 * 2 ** 30, null].map(bytes), ['0 B', '512 B', '1.5 KiB', '5.0 GiB', '-']);
});
