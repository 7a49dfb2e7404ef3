import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ADMIN, agent, gateway, online } from '../helpers/stack.ts';
import { dial, echoServer, http, readAll, waitFor } from '../helpers/net.ts';

async function setup(over: Record<string, unknown> = {}) {
  const gw = await gateway(over);
  const ag = await agent(gw.servPort);
  await online(gw);
  const echo = await echoServer();
  const grant = async () => (await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: echo.port } })).json;
  const done = async () => { await ag.stop(); await gw.cleanup(); echo.server.close(); };
  return { gw, grant, done };
}

async function roundTrip(port: number): Promise<string> {
  const s = await dial(port);
  s.end('ping');
  return (await readAll(s, 3000)).data.toString();
}

test('revoke ends the grant, kills its live session and refuses new connections', async () => {
  const { gw, grant, done } = await setup();
  const g = await grant();
  const live = await dial(g.access_port);
  live.write('x');
  await waitFor(() => gw.gateway.sessions.size === 1);
  const closed = readAll(live, 5000);
  const r = await http('DELETE', `${gw.api}/api/v1/grants/${g.grant_id}`, { token: ADMIN });
  assert.equal(r.status, 200);
  await closed;
  assert.equal(gw.gateway.sessions.size, 0, 'live session killed');
  assert.equal((await http('GET', `${gw.api}/api/v1/grants/${g.grant_id}`, { token: ADMIN })).status, 404);
  await waitFor(() => !gw.gateway.accessPorts().includes(g.access_port), 3000, 'access port closed');
  await assert.rejects(dial(g.access_port), 'nothing listens any more');
  await done();
});

test('an unused grant is dropped after idle_close and its port closed', async () => {
  const { gw, grant, done } = await setup({ idle_close: 0.4 });
  const g = await grant();
  assert.equal(await roundTrip(g.access_port), 'ping', 'works before the deadline');
  await waitFor(() => gw.gateway.grants.all().length === 0, 3000, 'idle grant dropped');
  assert.equal(gw.gateway.accessPorts().length, 0);
  const events = (await http('GET', `${gw.api}/api/v1/audit`, { token: ADMIN })).json.events.map((e: { event: string }) => e.event);
  assert.ok(events.includes('grant.idle'), events.join(','));
  await done();
});

test('a session in use keeps its grant from idling out', async () => {
  const { gw, grant, done } = await setup({ idle_close: 0.3 });
  const g = await grant();
  const s = await dial(g.access_port);
  await waitFor(() => gw.gateway.sessions.size === 1);
  await new Promise((r) => setTimeout(r, 800)); // the point: more than twice idle_close passes with the session open
  assert.equal(gw.gateway.grants.all().length, 1, 'grant still there while a session is open');
  s.destroy();
  await waitFor(() => gw.gateway.grants.all().length === 0, 3000, 'idles out after the session ends');
  await done();
});

test('at auth_time the grant expires and its sessions are closed', async () => {
  const { gw, grant, done } = await setup({ auth_time: 0.6 });
  const g = await grant();
  const s = await dial(g.access_port);
  const t0 = Date.now();
  const closed = readAll(s, 5000);
  await closed;
  assert.ok(Date.now() - t0 < 3000, 'closed by expiry');
  assert.equal(gw.gateway.grants.all().length, 0);
  await done();
});
