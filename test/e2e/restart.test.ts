import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ADMIN, agent, gateway, online } from '../helpers/stack.ts';
import { dial, echoServer, http, readAll, waitFor } from '../helpers/net.ts';

const RECONNECT_MAX_S = 0.5;

async function echoThrough(port: number): Promise<string> {
  const s = await dial(port);
  s.end('through the tunnel');
  return (await readAll(s, 3000)).data.toString();
}

test('agent restart: back online within its backoff bound, and access works again', async (t) => {
  const gw = await gateway();
  const echo = await echoServer();
  let ag = await agent(gw.servPort, { reconnect_max: RECONNECT_MAX_S });
  t.after(async () => { await ag.stop(); await gw.cleanup(); echo.server.close(); });
  await online(gw);
  const g = (await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: echo.port } })).json;
  await ag.stop();
  await waitFor(() => gw.gateway.agents.get('home') === undefined, 3000, 'gateway sees the agent gone');
  ag = await agent(gw.servPort, { reconnect_max: RECONNECT_MAX_S });
  const t0 = Date.now();
  await online(gw);
  assert.ok(Date.now() - t0 < 2000);
  assert.equal(await echoThrough(g.access_port), 'through the tunnel');
});

test('gateway restart: the agent reconnects within its backoff bound and grants survive', async (t) => {
  const first = await gateway();
  const { servPort, dataDir } = first;
  const echo = await echoServer();
  const ag = await agent(servPort, { reconnect_max: RECONNECT_MAX_S });
  let second: Awaited<ReturnType<typeof gateway>> | null = null;
  t.after(async () => { await ag.stop(); await (second ?? first).cleanup(); echo.server.close(); });
  await online(first);
  const g = (await http('POST', `${first.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: echo.port } })).json;
  assert.equal(await echoThrough(g.access_port), 'through the tunnel');
  await first.stop();
  await waitFor(() => !ag.online, 3000, 'agent notices the gateway is gone');
  const downAt = Date.now();
  // Same data dir and same serv_port: a real restart.
  second = await gateway({ serv_port: servPort, access_ports: `${g.access_port}-${g.access_port + 40}` }, dataDir);
  await online(second);
  const back = Date.now() - downAt;
  // Bound: one reconnect_max delay (jitter never exceeds it) plus connect and handshake time.
  assert.ok(back < RECONNECT_MAX_S * 1000 + 1500, `agent back after ${back} ms`);
  const grants = (await http('GET', `${second.api}/api/v1/grants`, { token: ADMIN })).json.grants;
  assert.equal(grants.length, 1);
  assert.equal(grants[0].grant_id, g.grant_id, 'the grant survived the restart');
  assert.equal(await echoThrough(g.access_port), 'through the tunnel', 'and its access port works');
});
