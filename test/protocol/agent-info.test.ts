import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeAgentInfo, encodeAgentInfo } from '../../src/protocol/agent-info.ts';
import { PayloadError } from '../../src/protocol/errors.ts';

test('AGENT_INFO params are the version in ASCII: "0.1.0" = 30 2e 31 2e 30', () => {
  assert.equal(encodeAgentInfo('0.1.0').toString('hex'), '302e312e30');
  assert.deepEqual(decodeAgentInfo(Buffer.from('302e312e30', 'hex')), { version: '0.1.0' });
  assert.equal(decodeAgentInfo(encodeAgentInfo('0.2.0-rc.1+abc')).version, '0.2.0-rc.1+abc');
});

test('an empty, oversized or non-printable version is a PayloadError both ways', () => {
  for (const bad of [Buffer.alloc(0), Buffer.alloc(65, 0x31), Buffer.from('0.1 0'), Buffer.from([0x30, 0x0a]), Buffer.from('é')]) {
    assert.throws(() => decodeAgentInfo(bad), PayloadError, bad.toString('hex'));
  }
  assert.throws(() => encodeAgentInfo(''), PayloadError);
  assert.throws(() => encodeAgentInfo('x'.repeat(65)), PayloadError);
});
