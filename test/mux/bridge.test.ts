import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { bridge } from '../../src/mux/bridge.ts';
import type { CloseReason } from '../../src/mux/session.ts';
import { pair, recorder, until } from './helpers.ts';

test('a socket whose peer closed before the bridge was attached still ends its session (no session or socket left behind)', async (t) => {
  const server = createServer({ allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port });
  const [local] = await accepted;
  t.after(() => { client.destroy(); local.destroy(); server.close(); });
  // As in dk connect: the accepted socket waits, paused, while its peer sends FIN; Node reads
  // the EOF and emits 'end' before any bridge is listening.
  local.pause();
  client.end();
  await once(local, 'end');
  assert.equal(local.readableEnded, true);

  const p = pair();
  const { g, a, opened } = p;
  t.after(() => { g.destroy(); a.destroy(); });
  await p.negotiated();
  const session = g.open(22, '127.0.0.1');
  await until(() => opened.length === 1, 'the OPN');
  const far = recorder();
  opened.at(-1)!.attach(far, () => undefined);
  const reasons: CloseReason[] = [];
  bridge(session, local, (r) => reasons.push(r));
  await until(() => far.ended, 'the FIN at the far end');
  assert.equal(far.ended, true, 'the far end saw the FIN');
  opened.at(-1)!.end(); // the far end finishes too
  await once(local, 'close');
  await until(() => reasons.length > 0, 'the bridge to report its end');
  await p.roundTrip(); // a second report would be in by now
  assert.deepEqual(reasons, ['done']);
  assert.equal(g.sessions.size, 0);
});
