import assert from 'node:assert/strict';
import { test } from 'node:test';
import { logFormat } from '../../src/util/log.ts';
import { duplicateKeys } from '../helpers/json-keys.ts';

test('log format: pretty on a terminal, JSON otherwise; an explicit choice wins either way', () => {
  assert.equal(logFormat(undefined, true), 'pretty');
  assert.equal(logFormat(undefined, false), 'json');
  assert.equal(logFormat('', false), 'json');
  assert.equal(logFormat('json', true), 'json');
  assert.equal(logFormat('pretty', false), 'pretty');
  assert.throws(() => logFormat('xml', true), /log format "xml": must be json or pretty/);
});

test('duplicateKeys finds a key written twice in one object, and only that', () => {
  assert.deepEqual(duplicateKeys('{"level":30,"name":"agent","name":"home"}'), ['name']);
  assert.deepEqual(duplicateKeys('{"a":{"a":1},"b":[{"a":1},{"a":2}]}'), []);
  assert.deepEqual(duplicateKeys('{"a":"x,\\"a\\":1","b":{"c":1,"c":2}}'), ['c']);
  assert.throws(() => duplicateKeys('{"a":'));
});
