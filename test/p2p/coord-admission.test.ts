import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { readLine } from '../../src/connect/protocol.ts';
import { rendezvous } from '../../src/p2p/coord-client.ts';
import { encodeLine } from '../../src/p2p/coord-messages.ts';
import { e2eLine } from '../../src/p2p/e2e-messages.ts';
import { COORD_MAGIC } from '../../src/p2p/relay-header.ts';
import { ADMIN } from '../helpers/stack.ts';
import { e2eStack, askE2e } from '../helpers/e2e.ts';
import { waitFor } from '../helpers/net.ts';

/**
 * Who gets into the punch coordinator on serv_port (docs/p2p.md §9): a connection that says "DKC1"
 * is not authenticated until its hello names a punch session the gateway made, so until then it
 * counts against the pre-auth limits like any other (a share per source address); and a session
 * admits its two sides, not more — otherwise one address, or one authorized client, could fill
 * the coordinator's connections and no one's punch would get in.
 */
const stack = (t: TestContext, over: Record<string, unknown> = {}) => e2eStack(t, { gatewayOver: over });

test('"DKC1" connections that have not named an admitted session count against the pre-auth share of their address', async (t) => {
  const { gw } = await stack(t, { max_pending_per_ip: 3 });
  const socks: Socket[] = [];
  let closed = 0;
  t.after(() => { for (const s of socks) s.destroy(); });
  for (let i = 0; i < 8; i++) {
    const s = connect({ host: '127.0.0.1', port: gw.servPort });
    s.on('error', () => undefined).on('close', () => closed++);
    s.write(COORD_MAGIC);
    socks.push(s);
  }
  const coord = gw.gateway.e2e.coordinator;
  await waitFor(() => closed + coord.connections === 8, 5000, 'each connection held by the coordinator or closed');
  assert.equal(coord.connections, 3, 'the coordinator holds the address\'s share, no more');
  assert.equal(closed, 5);
});

test('a punch session admits its two sides (the client and the agent); a third hello for it is refused', async (t) => {
  const { gw, echo, gatewayKey } = await stack(t);
  const a = await askE2e(gw.servPort, gatewayKey, ADMIN, echo.port, { p2p: 'auto' });
  t.after(() => a.control.destroy());
  a.control.write(e2eLine({ t: 'punch' }));
  const answer = JSON.parse(await readLine(a.control, 5000)) as { t: string; session?: string };
  assert.equal(answer.t, 'punch', JSON.stringify(answer));
  const session = answer.session!;
  // The client's side meets the agent's (the gateway told the agent to join): `go` for both.
  const r = await rendezvous({ host: '127.0.0.1', port: gw.servPort, session, prefix: COORD_MAGIC, timeoutMs: 10_000 });
  r.socket.destroy();
  assert.equal(gw.gateway.e2e.coordinator.paired, 1);
  // The same session once more (a client pairing with itself, again and again, to hold connections): refused.
  const third = connect({ host: '127.0.0.1', port: gw.servPort });
  t.after(() => third.destroy());
  third.on('error', () => undefined);
  third.write(Buffer.concat([COORD_MAGIC, encodeLine({ t: 'hello', session, lan: [] })]));
  const line = await readLine(third, 5000);
  assert.match(line, /"t":"error"/);
  assert.match(line, /no such punch session/);
});
