import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectLink } from '../../src/link/client.ts';
import type { LinkStream } from '../../src/link/stream.ts';
import { Purpose, readLine, type ConnectReply } from '../../src/connect/protocol.ts';
import { ADMIN, agent, gateway, online } from '../helpers/stack.ts';
import { echoServer, http } from '../helpers/net.ts';

async function connectRequest(servPort: number, key: Buffer, token: string, port: number): Promise<{ stream: LinkStream; reply: ConnectReply }> {
  const stream = await connectLink({ host: '127.0.0.1', port: servPort, serverKey: key, purpose: Purpose.CLIENT, resumeForMs: 1000 });
  stream.on('error', () => undefined);
  stream.write(JSON.stringify({ token, backend: 'home', port, mux: true }) + '\n');
  return { stream, reply: JSON.parse(await readLine(stream, 5000)) as ConnectReply };
}

test('per user: dk connect links and grants are capped per user, whatever the source address; other users are unaffected', async (t) => {
  const gw = await gateway({ max_links_per_user: 3, max_grants_per_user: 2 });
  const echo = await echoServer();
  const ag = await agent(gw.servPort);
  const streams: LinkStream[] = [];
  t.after(async () => { for (const s of streams) s.destroy(); await ag.stop(); await gw.cleanup(); echo.server.close(); });
  await online(gw);
  const bob = gw.gateway.users.create('bob', { permissions: { backends: ['home'], hosts: ['*'], ports: '*' } }).token;
  const key = gw.gateway.linkKey.publicRaw;
  for (let i = 0; i < 3; i++) {
    const r = await connectRequest(gw.servPort, key, bob, echo.port);
    streams.push(r.stream);
    assert.equal(r.reply.ok, true, `link ${i + 1} of 3`);
  }
  const fourth = await connectRequest(gw.servPort, key, bob, echo.port);
  streams.push(fourth.stream);
  assert.equal(fourth.reply.ok, false);
  assert.equal(fourth.reply.code, 'too_many_links');
  const admin = await connectRequest(gw.servPort, key, ADMIN, echo.port);
  streams.push(admin.stream);
  assert.equal(admin.reply.ok, true, 'another user still gets a link');
  // Closing one of bob's links gives him its place back once the gateway has seen its link
  // close. The gateway's links in the order they were accepted: bob's first is the first.
  const [bobsFirst] = gw.gateway.connectMuxes.keys();
  assert.ok(bobsFirst && gw.gateway.connectMuxes.size === 4, "bob's three links and admin's");
  // Not events.once: the gateway's end errors first (the peer reset the link), then closes.
  const gone = new Promise((r) => bobsFirst.once('close', r));
  streams[0]!.destroy();
  await gone;
  const again = await connectRequest(gw.servPort, key, bob, echo.port);
  streams.push(again.stream);
  assert.equal(again.reply.ok, true, 'a closed link frees its place');

  // Grants: from three different source addresses, bob gets two.
  const ask = (ip: string, port: number) => http('POST', `${gw.api}/api/v1/access`, { token: bob, body: { backend: 'home', port }, localAddress: ip });
  assert.equal((await ask('127.0.0.11', echo.port)).status, 201);
  assert.equal((await ask('127.0.0.12', echo.port)).status, 201);
  assert.equal((await ask('127.0.0.11', echo.port)).status, 201, 'asking again for the same grant is a refresh, not a new grant');
  const third = await ask('127.0.0.13', echo.port);
  assert.equal(third.status, 429);
  assert.equal(third.json.error.code, 'too_many_grants');
  assert.equal((await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: echo.port }, localAddress: '127.0.0.13' })).status, 201, 'another user still gets one');
});
