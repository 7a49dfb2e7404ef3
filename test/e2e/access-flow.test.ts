import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ADMIN, agent, gateway, online } from '../helpers/stack.ts';
import { dial, hashUntilEnd, http, listen, readAll, sendPattern, waitFor } from '../helpers/net.ts';
import type { Agent } from '../../src/agent/agent.ts';
import type { Socket } from 'node:net';

const SIZE = 64 * 1024 * 1024;
let gw: Awaited<ReturnType<typeof gateway>>;
let ag: Agent;
let target: { port: number; results: Promise<{ hash: string; bytes: number; sentHash: string }>[] } ;
const servers: { close(): void }[] = [];

before(async () => {
  gw = await gateway();
  ag = await agent(gw.servPort);
  await online(gw);
  const results: Promise<{ hash: string; bytes: number; sentHash: string }>[] = [];
  // The target reads everything while it sends 64 MiB back, both at once.
  const t = await listen((s: Socket) => {
    results.push((async () => {
      const recv = hashUntilEnd(s, 1);
      const sentHash = await sendPattern(s, 2, SIZE);
      const r = await recv;
      assert.equal(r.firstBadOffset, -1, `target saw a wrong byte at offset ${r.firstBadOffset}`);
      return { ...r, sentHash };
    })());
  });
  servers.push(t.server);
  target = { port: t.port, results };
});

after(async () => {
  await ag.stop();
  await gw.cleanup();
  for (const s of servers) s.close();
});

test('a granted client moves 64 MiB each way at once and the SHA-256 matches on both ends (encrypted link)', async () => {
  await moveBothWays();
});

test('the same over the seed\'s plain link', async () => {
  await ag.stop();
  await waitFor(() => gw.gateway.agents.get('home') === undefined, 3000, 'encrypted agent gone');
  const plain = await agent(gw.servPort, { plain: true });
  await online(gw);
  assert.equal(gw.gateway.agents.get('home')!.encrypted, false);
  try {
    await moveBothWays();
  } finally {
    await plain.stop();
    await waitFor(() => gw.gateway.agents.get('home') === undefined, 3000);
    ag = await agent(gw.servPort);
    await online(gw);
  }
});

async function moveBothWays(): Promise<void> {
  const r = await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: target.port }, localAddress: '127.0.0.2' });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.client_ip, '127.0.0.2');
  for (const k of ['access_port', 'client_ip', 'start_before', 'expires_at', 'grant_id']) assert.ok(k in r.json, `response has ${k}`);
  const s = await dial(r.json.access_port, '127.0.0.2');
  const recv = hashUntilEnd(s, 2);
  const sent = await sendPattern(s, 1, SIZE);
  const got = await recv;
  const atTarget = await target.results.at(-1)!;
  assert.equal(got.bytes, SIZE);
  assert.equal(got.firstBadOffset, -1, `client saw a wrong byte at offset ${got.firstBadOffset}`);
  assert.equal(got.hash, atTarget.sentHash, 'target → client hash');
  assert.equal(atTarget.bytes, SIZE);
  assert.equal(atTarget.hash, sent, 'client → target hash');
  s.destroy();
}

test('a client from another IP on the same access port is closed without receiving a byte', async () => {
  const r = await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: target.port }, localAddress: '127.0.0.2' });
  const before = target.results.length;
  const s = await dial(r.json.access_port, '127.0.0.3');
  s.write('hello?');
  const t0 = Date.now();
  const got = await readAll(s, 5000);
  assert.equal(got.data.length, 0, 'not a byte');
  assert.ok(Date.now() - t0 < 2000, 'closed at once, not by our timeout');
  assert.equal(target.results.length, before, 'no connection reached the target');
});

test('a second client IP gets the same access port with its own target', async () => {
  const other = await listen((s) => { s.end('other target'); });
  servers.push(other.server);
  const a = await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: target.port }, localAddress: '127.0.0.2' });
  const b = await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: other.port }, localAddress: '127.0.0.4' });
  assert.equal(b.status, 201);
  assert.equal(b.json.access_port, a.json.access_port, 'port reused across client IPs');
  assert.notEqual(b.json.grant_id, a.json.grant_id);
  const s = await dial(b.json.access_port, '127.0.0.4');
  s.end();
  const got = await readAll(s);
  assert.equal(got.data.toString(), 'other target');
});

test('the same client IP asking for a second target gets a different access port', async () => {
  const other = await listen((s) => { s.end('x'); });
  servers.push(other.server);
  const a = await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: target.port }, localAddress: '127.0.0.2' });
  const b = await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: other.port }, localAddress: '127.0.0.2' });
  assert.notEqual(b.json.access_port, a.json.access_port);
});
