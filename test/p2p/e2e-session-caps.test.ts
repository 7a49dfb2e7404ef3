import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LinkStream } from '../../src/link/stream.ts';
import { Mux } from '../../src/mux/mux.ts';
import { Feature } from '../../src/protocol/index.ts';
import { ADMIN, agent, gateway, online } from '../helpers/stack.ts';
import { agentKeyKnown, askE2e, presentTicket } from '../helpers/e2e.ts';
import { echoServer, waitFor } from '../helpers/net.ts';
import { recorder } from '../mux/helpers.ts';

/**
 * Sessions on end-to-end links are capped at the agent across its links, as they are on the
 * gateway's path (docs/security.md): the agent's max_sessions in all ("targets the agent dials for
 * one gateway at once"), and the gateway's max_sessions_per_user for one user's links together.
 * Each end-to-end link has its own mux; capping each alone let one user with 64 links have the
 * agent dial 64 × max_sessions targets.
 */
test('the agent caps end-to-end sessions per user (the gateway\'s max_sessions_per_user) and in all (its max_sessions), across links', async (t) => {
  const gw = await gateway({ link_keepalive: 0.2, max_sessions_per_user: 3 });
  const ag = await agent(gw.servPort, { keepalive: 0.2, max_sessions: 4 });
  await online(gw);
  await agentKeyKnown(gw);
  const echo = await echoServer();
  t.after(async () => { echo.server.close(); await ag.stop(); await gw.cleanup(); });
  const carol = gw.gateway.users.create('carol', { permissions: { backends: ['home'], hosts: ['*'], ports: '1-65535' } });
  const gatewayKey = gw.gateway.linkKey.publicRaw;
  const link = async (token: string): Promise<Mux> => {
    const a = await askE2e(gw.servPort, gatewayKey, token, echo.port);
    t.after(() => a.control.destroy());
    const { stream, answer } = await presentTicket(a, gw.servPort);
    assert.deepEqual(answer, { ok: true });
    return muxOn(stream);
  };
  /** Whether a session on `mux` reaches the echo target (true) or is refused (false). */
  const session = async (mux: Mux): Promise<boolean> => {
    const s = mux.open(echo.port, '127.0.0.1');
    const r = recorder();
    s.attach(r, () => undefined);
    s.write(Buffer.from('ping'));
    await waitFor(() => r.bytes === 4 || r.reason !== null, 5000, 'the echo or the refusal');
    return r.bytes === 4;
  };
  const admin1 = await link(ADMIN);
  const admin2 = await link(ADMIN);
  const carol1 = await link(carol.token);
  // Sessions stay open (each holds a target connection at the agent) while more are asked for.
  assert.deepEqual([await session(admin1), await session(admin1), await session(admin2)], [true, true, true], 'admin: three sessions over two links');
  assert.equal(await session(admin2), false, 'admin\'s fourth, on either link, is over max_sessions_per_user');
  assert.equal(await session(carol1), true, 'carol: the agent\'s fourth session');
  assert.equal(await session(carol1), false, 'a fifth is over the agent\'s max_sessions');
  assert.match(ag.e2e?.lastRefusal ?? '', /max_sessions/);
});

function muxOn(stream: LinkStream): Promise<Mux> {
  return new Promise<Mux>((resolve, reject) => {
    const m: Mux = new Mux(stream, {
      role: 'gateway', maxSessions: 64, keepaliveMs: 0, deadAfterMs: 0, features: Feature.FLOW | Feature.PONG,
      onHello: () => resolve(m), onClose: (err) => reject(err ?? new Error('closed')),
    });
    stream.resume();
  });
}
