import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeHandshake } from '../../src/auth/handshake.ts';
import { ADMIN, agent, gateway, KEY, online } from '../helpers/stack.ts';
import { dial, echoServer, http, listen, readAll, waitFor } from '../helpers/net.ts';

test('IPv6 targets: the agent dials ::1 when its allowlist has it', async (t) => {
  const echo = await echoServer('::1').catch((e: Error) => e);
  if (echo instanceof Error) {
    t.skip(`this machine has no IPv6 loopback (${echo.message})`);
    return;
  }
  const gw = await gateway();
  const ag = await agent(gw.servPort, { lan_nets: ['::1/128'] });
  t.after(async () => { await ag.stop(); await gw.cleanup(); echo.server.close(); });
  await online(gw);
  const g = await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: echo.port, host: '::1' } });
  assert.equal(g.status, 201, g.text);
  const s = await dial(g.json.access_port);
  s.end('over IPv6');
  assert.equal((await readAll(s)).data.toString(), 'over IPv6');
});

test('an unreachable target is reported with CLS: the client is closed and the audit says so', async (t) => {
  const closedPort = await listen(() => undefined).then(({ server, port }) => { server.close(); return port; });
  const gw = await gateway();
  const ag = await agent(gw.servPort);
  t.after(async () => { await ag.stop(); await gw.cleanup(); });
  await online(gw);
  const g = await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: closedPort } });
  const s = await dial(g.json.access_port);
  const r = await readAll(s, 5000);
  assert.equal(r.data.length, 0);
  await waitFor(() => gw.gateway.sessions.size === 0);
  const audit = (await http('GET', `${gw.api}/api/v1/audit`, { token: ADMIN })).json.events;
  assert.match(audit.find((e: { event: string }) => e.event === 'session').detail, /remote/);
});

test('sessions can be listed with their byte counts and killed through the API', async (t) => {
  const echo = await echoServer();
  const gw = await gateway();
  const ag = await agent(gw.servPort);
  t.after(async () => { await ag.stop(); await gw.cleanup(); echo.server.close(); });
  await online(gw);
  const g = await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: echo.port } });
  const s = await dial(g.json.access_port);
  s.write('12345');
  await new Promise<void>((r) => s.once('data', () => r()));
  const list = (await http('GET', `${gw.api}/api/v1/sessions`, { token: ADMIN })).json.sessions;
  assert.equal(list.length, 1);
  assert.equal(list[0].bytes_up, 5);
  assert.equal(list[0].bytes_down, 5);
  assert.equal(list[0].grant_id, g.json.grant_id);
  const closed = readAll(s, 5000);
  assert.equal((await http('DELETE', `${gw.api}/api/v1/sessions/${list[0].id}`, { token: ADMIN })).status, 200);
  await closed;
  assert.equal((await http('GET', `${gw.api}/api/v1/sessions`, { token: ADMIN })).json.sessions.length, 0);
  assert.equal((await http('DELETE', `${gw.api}/api/v1/sessions/${list[0].id}`, { token: ADMIN })).status, 404);
});

test('a newer connection for the same backend name replaces the older one', async (t) => {
  const gw = await gateway();
  const ag = await agent(gw.servPort, { reconnect_min: 5, reconnect_max: 5 });
  t.after(async () => { await ag.stop(); await gw.cleanup(); });
  await online(gw);
  const first = gw.gateway.agents.get('home')!;
  const newer = await dial(gw.servPort, '127.0.0.8');
  newer.write(makeHandshake('home', KEY));
  await waitFor(() => gw.gateway.agents.get('home') !== first, 3000, 'replacement');
  assert.match(gw.gateway.agents.get('home')!.remote, /^127\.0\.0\.8:/);
  assert.equal(first.mux.closed, true, 'the older link is closed');
  await waitFor(() => !ag.online, 3000, 'the older agent sees its link closed');
  newer.destroy();
});

test('the core agent flags keep working: without a gateway key the agent speaks plain mode', async (t) => {
  const echo = await echoServer();
  const gw = await gateway();
  const ag = await agent(gw.servPort, { gateway_key: undefined });
  t.after(async () => { await ag.stop(); await gw.cleanup(); echo.server.close(); });
  await online(gw);
  assert.equal(gw.gateway.agents.get('home')!.encrypted, false);
  const g = await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: echo.port } });
  const s = await dial(g.json.access_port);
  s.end('plain still works');
  assert.equal((await readAll(s)).data.toString(), 'plain still works');
});
