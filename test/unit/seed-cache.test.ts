import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { openDb } from '../../src/store/db.ts';
import { SqliteSeedCache } from '../../src/store/replay-store.ts';
import { tempDir } from '../helpers/stack.ts';

test('seed cache: a seed seen before the database was closed is refused after it is reopened (a gateway restart)', () => {
  const dir = tempDir();
  let now = 1_000_000;
  const seed = randomBytes(16);
  const db1 = openDb(dir);
  const c1 = new SqliteSeedCache(db1, 3_600_000, 100, () => now);
  assert.equal(c1.check(seed), true);
  assert.equal(c1.check(seed), false);
  db1.close();
  const db2 = openDb(dir);
  const c2 = new SqliteSeedCache(db2, 3_600_000, 100, () => now);
  assert.equal(c2.check(seed), false, 'replayed after the restart: refused');
  assert.equal(c2.check(randomBytes(16)), true);
  now += 3_600_000;
  assert.equal(c2.check(seed), true, 'after the TTL the seed is forgotten, as documented');
  db2.close();
});

test('seed cache: rows are bounded (the cap is enforced every 1024 inserts)', () => {
  const db = openDb(tempDir());
  let now = 0;
  const c = new SqliteSeedCache(db, 3_600_000, 500, () => now++);
  for (let i = 0; i < 3000; i++) assert.equal(c.check(randomBytes(16)), true);
  assert.ok(c.size <= 500 + 1024, `at most max + 1024 rows, got ${c.size}`);
  db.close();
});
