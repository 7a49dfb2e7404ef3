import assert from 'node:assert/strict';
import { test } from 'node:test';
import { failureText, pathLine, reasonOfError, retryable, type PunchReport } from '../../src/p2p/reason.ts';

const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code });

test('socket errors map to reasons, the code kept as detail', () => {
  const cases: [string, string][] = [
    ['ECONNREFUSED', 'refused'], ['ECONNRESET', 'reset'], ['EPIPE', 'reset'], ['EHOSTUNREACH', 'unreachable'], ['ENETUNREACH', 'unreachable'],
    ['EADDRINUSE', 'addr-in-use'], ['EADDRNOTAVAIL', 'addr-not-available'], ['ETIMEDOUT', 'timeout'], ['EWHATEVER', 'error'],
  ];
  for (const [code, reason] of cases) assert.deepEqual(reasonOfError(errno(code)), { reason, detail: code });
  assert.deepEqual(reasonOfError(new Error('boom')), { reason: 'error', detail: 'boom' });
  assert.deepEqual(reasonOfError('odd'), { reason: 'error', detail: 'odd' });
});

test('only a refusal or a reset is worth a redial from the same port', () => {
  assert.equal(retryable('refused'), true);
  assert.equal(retryable('reset'), true);
  for (const r of ['timeout', 'unreachable', 'addr-in-use', 'addr-not-available', 'bad-select', 'no-select', 'lost', 'error'] as const) assert.equal(retryable(r), false, r);
});

const failed: PunchReport = {
  ok: false, ms: 3004, deadlineMs: 3000,
  outcomes: [
    { candidate: { kind: 'public', host: '198.18.2.2', port: 40000 }, attempts: 1, reason: 'timeout' },
    { candidate: { kind: 'lan', host: '198.19.2.2', port: 40000 }, attempts: 1, reason: 'unreachable', detail: 'ENETUNREACH' },
  ],
};

test('a failure names the deadline and each candidate with its reason', () => {
  assert.equal(failureText(failed), 'no direct path in 3000 ms: public 198.18.2.2:40000 timeout; lan 198.19.2.2:40000 unreachable (ENETUNREACH)');
  assert.equal(pathLine(failed), 'path=relay reason="no direct path in 3000 ms: public 198.18.2.2:40000 timeout; lan 198.19.2.2:40000 unreachable (ENETUNREACH)"');
});

test('a failure before the deadline says every candidate failed, and counts redials', () => {
  const early: PunchReport = {
    ok: false, ms: 107, deadlineMs: 3000,
    outcomes: [{ candidate: { kind: 'public', host: '198.18.2.2', port: 40000 }, attempts: 3, reason: 'refused', detail: 'ECONNREFUSED' }],
  };
  assert.equal(failureText(early), 'no direct path (every candidate failed in 107 ms): public 198.18.2.2:40000 refused (ECONNREFUSED) after 3 tries');
  assert.equal(failureText({ ok: false, ms: 0, deadlineMs: 3000, outcomes: [] }), 'no direct path: the peer has no candidate this side can dial');
});

test('a success names the winning candidate, the time and its attempts; a quote in a detail stays quoted', () => {
  const ok: PunchReport = {
    ok: true, ms: 3, deadlineMs: 3000, candidate: { kind: 'public', host: '198.18.2.2', port: 40000 },
    outcomes: [{ candidate: { kind: 'public', host: '198.18.2.2', port: 40000 }, attempts: 2, reason: 'won' }],
  };
  assert.equal(pathLine(ok), 'path=direct via="public 198.18.2.2:40000" ms=3 attempts=2');
  const odd: PunchReport = { ...failed, outcomes: [{ ...failed.outcomes[0]!, reason: 'error', detail: 'say "hi"' }] };
  assert.equal(pathLine(odd), String.raw`path=relay reason="no direct path in 3000 ms: public 198.18.2.2:40000 error (say \"hi\")"`);
});
