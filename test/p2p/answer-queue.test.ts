import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AnswerQueue } from '../../src/p2p/answer-queue.ts';

/** dk connect's relay and punch requests and the gateway's in-order answers (src/p2p/answer-queue.ts), without sockets. */

type Kind = 'relay' | 'punch';
function ask(q: AnswerQueue<Kind, string>, kind: Kind) {
  const got: { value?: string; error?: string } = {};
  const handle = q.push({ kind, settle: (r) => { if (r.ok) got.value = r.value; else got.error = r.error.message; } });
  return { got, handle };
}

test('answers settle the requests in order; a late answer to a request given up on is dropped, not handed to the next one', () => {
  const q = new AnswerQueue<Kind, string>(8);
  const a = ask(q, 'relay');
  const b = ask(q, 'relay');
  a.handle!.giveUp(new Error('no answer in time'));
  assert.deepEqual(a.got, { error: 'no answer in time' });
  // The answer meant for a arrives late: b must not take it.
  q.answer({ kind: 'relay', value: 'token-for-a' });
  assert.deepEqual(b.got, {}, 'b still waits');
  q.answer({ kind: 'relay', value: 'token-for-b' });
  assert.deepEqual(b.got, { value: 'token-for-b' });
  assert.deepEqual(a.got, { error: 'no answer in time' }, 'a settled once');
  assert.equal(q.length, 0);
});

test('an error answer and an answer of the wrong kind fail the oldest request; giving up twice or after the answer does nothing', () => {
  const q = new AnswerQueue<Kind, string>(8);
  const a = ask(q, 'punch');
  const b = ask(q, 'punch');
  const c = ask(q, 'relay');
  q.answer({ error: new Error('the gateway: more than 12 punch requests in a minute') });
  assert.deepEqual(a.got, { error: 'the gateway: more than 12 punch requests in a minute' });
  q.answer({ kind: 'relay', value: 't' });
  assert.match(b.got.error ?? '', /the answer is relay, not punch/);
  q.answer({ kind: 'relay', value: 'r' });
  assert.deepEqual(c.got, { value: 'r' });
  c.handle!.giveUp(new Error('late'));
  assert.deepEqual(c.got, { value: 'r' }, 'an answered request stays answered');
  // An answer with nothing waiting is dropped.
  q.answer({ kind: 'relay', value: 'stray' });
  assert.equal(q.length, 0);
});

test('at most max requests wait; failAll settles every one still waiting, once', () => {
  const q = new AnswerQueue<Kind, string>(2);
  const a = ask(q, 'relay');
  const b = ask(q, 'punch');
  assert.equal(ask(q, 'relay').handle, null, 'a third is refused: the peer has stopped answering');
  a.handle!.giveUp(new Error('gave up'));
  q.failAll(new Error('the link to the gateway ended'));
  assert.deepEqual(a.got, { error: 'gave up' });
  assert.deepEqual(b.got, { error: 'the link to the gateway ended' });
  assert.equal(q.length, 0);
});
