import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeToCoordinator, decodeToSide, encodeLine, type Go, type Hello } from '../../src/p2p/coord-messages.ts';
import { P2pProtocolError } from '../../src/p2p/errors.ts';

test('messages round-trip through a line', () => {
  const hello: Hello = { t: 'hello', session: 's-1', lan: [{ host: '198.19.1.2', port: 40000 }] };
  assert.deepEqual(decodeToCoordinator(encodeLine(hello).toString().trimEnd()), hello);
  const go: Go = {
    t: 'go', role: 'responder', token: 'ab'.repeat(16), observed: { host: '198.18.2.2', port: 1 },
    peer: [{ kind: 'public', host: '198.18.1.2', port: 2 }], delayMs: 20,
  };
  assert.deepEqual(decodeToSide(encodeLine(go).toString().trimEnd()), go);
  assert.ok(encodeLine(go).toString().endsWith('}\n'));
});

test('bad lines are a P2pProtocolError naming the field', () => {
  const bad = (f: (l: string) => unknown, line: string, re: RegExp): void =>
    assert.throws(() => f(line), (e: unknown) => e instanceof P2pProtocolError && re.test(e.message), line);
  bad(decodeToCoordinator, 'not json', /not JSON/);
  bad(decodeToCoordinator, '[]', /bad coordination message/);
  bad(decodeToCoordinator, '{"t":"go"}', /bad coordination message: t/);
  bad(decodeToCoordinator, '{"t":"hello","session":"a b","lan":[]}', /session/);
  bad(decodeToCoordinator, '{"t":"hello","session":"s","lan":[{"host":"example.com","port":1}]}', /lan\.0\.host: must be an IP address/);
  bad(decodeToCoordinator, '{"t":"hello","session":"s","lan":[{"host":"10.0.0.1","port":0}]}', /lan\.0\.port/);
  bad(decodeToCoordinator, `{"t":"hello","session":"s","lan":${JSON.stringify(Array.from({ length: 9 }, () => ({ host: '10.0.0.1', port: 1 })))}}`, /lan/);
  bad(decodeToCoordinator, '{"t":"hello","session":"s","lan":[],"extra":1}', /bad coordination message/);
  bad(decodeToSide, '{"t":"go","role":"boss","token":"00","observed":{"host":"1.2.3.4","port":1},"peer":[],"delayMs":0}', /role/);
  bad(decodeToSide, '{"t":"go","role":"initiator","token":"00","observed":{"host":"1.2.3.4","port":1},"peer":[],"delayMs":0}', /token/);
  bad(decodeToSide, `{"t":"go","role":"initiator","token":"${'00'.repeat(16)}","observed":{"host":"1.2.3.4","port":1},"peer":[],"delayMs":99999}`, /delayMs/);
});
