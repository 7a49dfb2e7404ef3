import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnectRefusedError } from '../../src/connect/errors.ts';
import { stdioExit } from '../../src/connect/stdio-exit.ts';
import { ServerAuthError } from '../../src/link/errors.ts';

test('dk connect --stdio exit codes: 0 clean end, 3 refused, 4 refused otherwise or not a clean end, 5 unreachable or link lost', () => {
  const refused = (code: string): number => stdioExit({ refused: new ConnectRefusedError(code, 'why') }).code;
  assert.deepEqual(stdioExit({ reason: 'done', bytesIn: 10, bytesOut: 10 }), { code: 0, message: null });
  assert.deepEqual(['unauthorized', 'forbidden', 'too_many_failures', 'too_many_links'].map(refused), [3, 3, 3, 3]);
  assert.deepEqual(['not_found', 'backend_offline', 'session_cap', 'bad_request', 'bad_reply'].map(refused), [4, 4, 4, 4, 4]);
  assert.deepEqual(['link', 'late', 'ECONNREFUSED', 'DK_LINK_SERVER_AUTH', 'DK_LINK_SESSION_LOST'].map(refused), [5, 5, 5, 5, 5]);
  const before = stdioExit({ reason: 'remote', bytesIn: 0, bytesOut: 20 });
  assert.equal(before.code, 4);
  assert.match(before.message!, /before any byte arrived/);
  assert.match(stdioExit({ reason: 'remote', bytesIn: 5, bytesOut: 0 }).message!, /aborted/);
  assert.equal(stdioExit({ reason: 'link', bytesIn: 5, bytesOut: 5 }).code, 5);
  assert.equal(stdioExit({ reason: 'local', bytesIn: 5, bytesOut: 5 }).code, 4);
  assert.match(stdioExit({ refused: new ConnectRefusedError('forbidden', 'no port 22 for you') }).message!, /^the gateway refused the session \(forbidden\): no port 22 for you$/);
  // A wrong pinned key: the gateway answered, and the answer failed authentication (6); no answer at all is 5.
  const wrongKey = new ServerAuthError('the gateway could not prove it holds the pinned key', true);
  assert.equal(stdioExit({ refused: new ConnectRefusedError(wrongKey.code, wrongKey.message, { cause: wrongKey }) }).code, 6);
  const silent = new ServerAuthError('closed before answering', false);
  assert.equal(stdioExit({ refused: new ConnectRefusedError(silent.code, silent.message, { cause: silent }) }).code, 5);
});
