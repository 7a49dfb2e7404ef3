import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BackendLabels, OTHER_BACKEND } from '../../src/gateway/backend-labels.ts';

test('backend labels: only allowed names, at most the cap; everything else is _other', () => {
  const l = new BackendLabels(3);
  l.allow(['a', 'b']);
  assert.equal(l.label('a'), 'a');
  assert.equal(l.label('nope'), OTHER_BACKEND, 'a name nobody allowed');
  l.allow(['c', 'd', 'e']);
  assert.equal(l.label('c'), 'c');
  assert.equal(l.label('d'), OTHER_BACKEND, 'past the cap');
  assert.deepEqual([...l.values()], ['a', 'b', 'c']);
  l.allow(['a']);
  assert.deepEqual([...l.values()], ['a', 'b', 'c'], 'allowing twice changes nothing');
});
