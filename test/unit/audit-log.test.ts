import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AuditLog } from '../../src/gateway/audit.ts';
import { openDb } from '../../src/store/db.ts';
import { waitFor } from '../helpers/net.ts';

const count = (db: ReturnType<typeof openDb>): number => (db.prepare('SELECT count(*) AS n FROM audit').get() as { n: number }).n;

test('audit rows are written in batches, yet a read, a prune or a flush before close never misses one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dk-audit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = openDb(dir);
  const log = new AuditLog(db);
  for (let i = 0; i < 10; i++) log.write({ event: 'session', sessionId: i, bytesUp: i });
  assert.equal(count(db), 0, 'queued, not yet written');
  assert.equal(log.recent(100).length, 10, 'a read flushes first');
  assert.equal(count(db), 10);
  log.write({ event: 'grant', user: 'a' });
  // The same 250 ms bound as before, but done as soon as the row is there.
  await waitFor(() => count(db) === 11, 250, 'the timer to write the queued row within its 100 ms');
  assert.equal(count(db), 11, 'the timer wrote it within its 100 ms');
  for (let i = 0; i < 600; i++) log.write({ event: 'session', sessionId: i });
  assert.ok(count(db) >= 11 + 512, 'a full batch is written at once');
  log.write({ event: 'last' });
  log.flush();
  db.close();
  const again = openDb(dir);
  t.after(() => again.close());
  assert.equal(count(again), 11 + 600 + 1);
  assert.equal(new AuditLog(again).recent(1)[0]!.event, 'last');
});
