import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseFingerprint } from '../../src/util/tls-fingerprint.ts';

test('parseFingerprint: as printed, lower case, without colons, with a SHA256: prefix; anything else is refused', () => {
  const printed = 'AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89';
  assert.equal(parseFingerprint(printed), printed);
  assert.equal(parseFingerprint(printed.toLowerCase()), printed);
  assert.equal(parseFingerprint(printed.replace(/:/g, '')), printed);
  assert.equal(parseFingerprint(`SHA256:${printed}`), printed);
  assert.equal(parseFingerprint(` sha256=${printed.replace(/:/g, ' ')} `), printed);
  for (const bad of ['', 'AB:CD', `${printed}:00`, printed.replace('AB', 'ZZ')]) assert.throws(() => parseFingerprint(bad), RangeError, bad);
});
