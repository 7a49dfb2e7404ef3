import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test, type TestContext } from 'node:test';
import { readLine } from '../../src/connect/protocol.ts';
import { connectLink } from '../../src/link/client.ts';
import { e2eLine } from '../../src/p2p/e2e-messages.ts';
import { encodeRelayHeader, RelaySide } from '../../src/p2p/relay-header.ts';
import { ticketIdOf, ticketProof } from '../../src/p2p/ticket.ts';
import { connected } from '../../src/util/connect.ts';
import { ADMIN } from '../helpers/stack.ts';
import { e2eStack, askE2e, presentTicket } from '../helpers/e2e.ts';
import { waitFor } from '../helpers/net.ts';

/**
 * An end-to-end link must not outlive the client's control link to the gateway: that link is where
 * the gateway checks, again and again, that the client may still reach the target (a revoked token
 * or a removed user ends it, and with it the end-to-end link). A hostile client that lets its
 * control link go while keeping the end-to-end link would otherwise keep its access for good.
 */
const stack = (t: TestContext, agentOver: Record<string, unknown> = {}) => e2eStack(t, { agentOver });

test('a ticket presented after its control link ended is refused: the relay token was taken first, then the control link closed', async (t) => {
  const { gw, ag, echo, gatewayKey } = await stack(t);
  const a = await askE2e(gw.servPort, gatewayKey, ADMIN, echo.port);
  a.control.write(e2eLine({ t: 'relay' }));
  const token = Buffer.from((JSON.parse(await readLine(a.control, 5000)) as { token: string }).token, 'hex');
  await waitFor(() => gw.gateway.e2e.relay.halfJoined === 1, 5000, 'the agent\'s half of the relay waiting');
  // The control link goes: the gateway tells the agent to end this ticket's link (there is none yet).
  a.control.destroy();
  await waitFor(() => gw.gateway.e2e.clients.size === 0, 5000, 'the gateway saw the control link end');
  const stream = await connectLink({
    host: '127.0.0.1', port: gw.servPort, serverKey: Buffer.from(a.grant.agent_key, 'base64url'), resumeForMs: 1000,
    dial: () => {
      const s = connect({ host: '127.0.0.1', port: gw.servPort, noDelay: true });
      s.write(encodeRelayHeader(RelaySide.CLIENT, token));
      return connected(s);
    },
  });
  stream.on('error', () => undefined);
  t.after(() => stream.destroy());
  stream.write(e2eLine({ ticket: a.grant.ticket, proof: ticketProof(a.key.privateKey, stream.secrets.sessionId, ticketIdOf(a.grant.ticket)) }));
  const answer = JSON.parse(await readLine(stream, 5000)) as { ok: boolean; code?: string };
  assert.deepEqual({ ok: answer.ok, code: answer.code }, { ok: false, code: 'ticket_ended' });
  assert.equal(ag.e2e?.links, 0);
});

test('an end-to-end link whose control link ended while the agent was offline (the gateway\'s "end" lost) ends anyway', async (t) => {
  // The agent comes back slowly, so the gateway's "end" finds it offline.
  const { gw, ag, echo, gatewayKey } = await stack(t, { reconnect_min: 3, reconnect_max: 3 });
  const a = await askE2e(gw.servPort, gatewayKey, ADMIN, echo.port);
  const { stream, answer } = await presentTicket(a, gw.servPort);
  t.after(() => stream.destroy());
  stream.resume();
  assert.deepEqual(answer, { ok: true });
  assert.equal(ag.e2e?.links, 1);
  // While its control link lives, the gateway keeps the link alive at the agent.
  await waitFor(() => (ag.e2e?.counts.kept ?? 0) >= 1, 15_000, 'the gateway kept the link alive');
  // The agent's link to the gateway ends for good; then the client drops its control link and keeps the other.
  gw.gateway.agents.get('home')!.mux.destroy();
  a.control.destroy();
  await waitFor(() => gw.gateway.e2e.clients.size === 0, 5000, 'the gateway saw the control link end');
  await waitFor(() => gw.gateway.agents.get('home')?.mux.closed === false, 15_000, 'the agent back online');
  // The relayed transport is the gateway's pipe, not the agent's link: it still carries the end-to-end link, until the agent ends it.
  await waitFor(() => ag.e2e?.links === 0, 60_000, 'the agent ended the link whose control link is gone');
  await waitFor(() => stream.destroyed, 10_000, 'the client\'s end of the link ended too');
});
