import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/config/errors.ts';
import { openDb } from '../../src/store/db.ts';
import { tempDir } from '../helpers/stack.ts';

test('a database written by a newer DoorKeeper (a higher schema version) is refused with a ConfigError, not opened', () => {
  const dir = tempDir();
  openDb(dir).close();
  const raw = new DatabaseSync(join(dir, 'doorkeeper.db'));
  const v = (raw.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
  raw.exec(`PRAGMA user_version = ${v + 1}`);
  raw.close();
  assert.throws(() => openDb(dir), (e: unknown) => e instanceof ConfigError && /newer DoorKeeper/.test(e.message));
  // The same version opens.
  const raw2 = new DatabaseSync(join(dir, 'doorkeeper.db'));
  raw2.exec(`PRAGMA user_version = ${v}`);
  raw2.close();
  openDb(dir).close();
});
