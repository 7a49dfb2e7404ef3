import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dk } from '../helpers/cli.ts';
import { ADMIN, agent, gateway, online } from '../helpers/stack.ts';
import { echoServer } from '../helpers/net.ts';
import { agentKeyKnown } from '../helpers/e2e.ts';

/**
 * `--agent-key` pins the agent's end-to-end key so that the gateway never sees the session's
 * plaintext (docs/p2p.md §9). A gateway that answers without an end-to-end link (p2p: off, or
 * one that says the agent cannot) would put the session on the gateway's path, where it sees
 * every byte: with the key pinned, dk connect refuses that instead (exit 6), and says why.
 */
test('dk connect --agent-key refuses the gateway\'s path (exit 6) when the gateway offers no end-to-end link', async (t) => {
  const gw = await gateway({ link_keepalive: 0.2, p2p: 'off' });
  const ag = await agent(gw.servPort, { keepalive: 0.2 });
  await online(gw);
  await agentKeyKnown(gw);
  const echo = await echoServer();
  t.after(async () => { echo.server.close(); await ag.stop(); await gw.cleanup(); });
  const gatewayKey = gw.gateway.linkKey.publicRaw.toString('base64url');
  const agentKey = gw.gateway.agents.get('home')!.e2eKey!;
  const p = dk(['connect', 'home', String(echo.port), '--stdio', '--gateway', `127.0.0.1:${gw.servPort}`, '--gateway-key', gatewayKey, '--agent-key', agentKey],
    { stdin: 'pipe', env: { DK_TOKEN: ADMIN } });
  p.stdin!.end('through the gateway?\n');
  const { code } = await p.exited;
  assert.equal(code, 6, p.err());
  assert.equal(p.out(), '', 'not a byte went through the gateway\'s path');
  assert.match(p.err(), /^dk: the gateway offers no end-to-end link to backend "home" \(.*p2p: off.*\); with --agent-key pinned/m);
  assert.equal(gw.gateway.sessions.size, 0);
});
