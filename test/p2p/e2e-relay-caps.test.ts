import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { E2eRelay } from '../../src/gateway/e2e-relay.ts';
import { encodeRelayHeader, RelaySide } from '../../src/p2p/relay-header.ts';
import { connected } from '../../src/util/connect.ts';
import { relayJoinServer } from '../helpers/e2e.ts';
import { waitFor } from '../helpers/net.ts';

/**
 * The end-to-end relay's tables are capped per user as well as in total (docs/p2p.md §9): not only
 * the tokens waiting for their sides, but the pairs they became. Otherwise one user, asking for a
 * relay again and again and joining both sides itself, holds pair after pair (each stays while it
 * carries bytes) until the gateway-wide cap refuses every other user's relay.
 */
test('a user holds at most maxPairsPerUser relays, waiting or paired; another user still gets one, and an ended pair frees its place', async (t) => {
  const relay = new E2eRelay({ maxPendingPerUser: 2, maxPairsPerUser: 3 });
  const srv = await relayJoinServer((s, head) => relay.join(s, head));
  const socks: Socket[] = [];
  t.after(() => { relay.close(); srv.close(); for (const s of socks) s.destroy(); });
  const join = async (side: RelaySide, token: Buffer): Promise<Socket> => {
    const s = connect({ host: '127.0.0.1', port: srv.port });
    s.on('error', () => undefined);
    socks.push(s);
    s.write(encodeRelayHeader(side, token));
    return connected(s);
  };
  let pairs = 0;
  for (let i = 0; i < 6; i++) {
    const token = relay.expect('mallory');
    if (!token) break;
    await join(RelaySide.CLIENT, token);
    await join(RelaySide.AGENT, token);
    await waitFor(() => relay.pairCount === pairs + 1, 5000, `pair ${pairs + 1}`);
    pairs++;
  }
  assert.equal(pairs, 3, 'mallory got as many pairs as her cap');
  assert.equal(relay.expect('mallory'), null, 'and no more while they live');
  assert.notEqual(relay.expect('bob'), null, 'bob still gets a relay');
  // One of mallory's pairs ends: she may have another.
  socks[0]!.destroy();
  await waitFor(() => relay.pairCount === 2, 5000, 'the pair ended');
  assert.notEqual(relay.expect('mallory'), null);
});
