import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { Mux } from '../../src/mux/mux.ts';
import { ADMIN, agent, gateway, online } from '../helpers/stack.ts';
import { dial, http, listen, readAll, waitFor } from '../helpers/net.ts';
import { recorder } from '../mux/helpers.ts';

test('the agent refuses a target outside its allowlist even when the gateway asks', async () => {
  // A hostile "gateway": accepts the agent, then sends OPN for a host the agent does not allow.
  const dialledFrom: number[] = [];
  const secret = await listen((s) => { dialledFrom.push(s.remotePort ?? 0); s.destroy(); }, '127.0.0.5');
  let mux: Mux | null = null;
  const evil = createServer((s: Socket) => {
    s.once('data', (hs: Buffer) => {
      assert.ok(hs.length >= 32);
      mux = new Mux(s, { role: 'gateway', keepaliveMs: 0 });
      mux.feed(hs.subarray(32));
    });
  });
  evil.listen(0, '127.0.0.1');
  await once(evil, 'listening');
  const port = (evil.address() as { port: number }).port;
  const ag = await agent(port, { lan_nets: ['127.0.0.1/32:1-1000'], plain: true });
  await waitFor(() => mux !== null && mux.features !== 0);
  const s = mux!.open(secret.port, '127.0.0.5');
  const r = recorder();
  s.attach(r, () => undefined);
  const s2 = mux!.open(2000, '127.0.0.1'); // allowed host, port outside 1-1000
  const r2 = recorder();
  s2.attach(r2, () => undefined);
  await waitFor(() => r.reason !== null && r2.reason !== null);
  assert.equal(r.reason, 'remote', 'the agent answered CLS');
  assert.equal(r2.reason, 'remote');
  // A connection of our own, made after the CLS: the server accepts in arrival order, so a dial
  // the agent made before answering would be accepted before ours.
  const probe = await dial(secret.port, '127.0.0.1', '127.0.0.5');
  const probePort = probe.localPort;
  await waitFor(() => dialledFrom.includes(probePort ?? -1), 3000, 'our own connection to be accepted');
  probe.destroy();
  const hits = dialledFrom.filter((p) => p !== probePort).length;
  assert.equal(hits, 0, 'the forbidden host was never dialled');
  assert.equal(ag.refused, 2);
  await ag.stop();
  evil.close();
  secret.server.close();
});

test('through the real gateway: the agent tells its allowlist, and the API refuses a target outside it (409, audited)', async () => {
  const gw = await gateway();
  let hits = 0;
  const secret = await listen((s) => { hits++; s.end('secret'); }, '127.0.0.6');
  const ag = await agent(gw.servPort, { lan_nets: ['127.0.0.1/32', '10.1.0.0/16:22,8000-8100'] });
  await online(gw);
  const b = (await http('GET', `${gw.api}/api/v1/backends`, { token: ADMIN })).json.backends[0];
  assert.deepEqual(b.allowlist, ['127.0.0.1/32:*', '10.1.0.0/16:22,8000-8100'], 'the API shows what the agent told');
  const r = await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: secret.port, host: '127.0.0.6' } });
  assert.equal(r.status, 409);
  assert.equal(r.json.error.code, 'refused_by_allowlist');
  assert.match(r.json.error.message, /would refuse 127\.0\.0\.6:\d+: the agent allows only 127\.0\.0\.1\/32:\*, 10\.1\.0\.0\/16:22,8000-8100/);
  const port = await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: 23, host: '10.1.2.3' } });
  assert.equal(port.status, 409, 'a host inside a rule, with a port outside it');
  const ok = await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: 8080, host: '10.1.2.3' } });
  assert.equal(ok.status, 201);
  assert.deepEqual(ok.json.warnings, []);
  assert.equal(gw.gateway.grants.all().length, 1, 'no grant for the refused targets');
  const audit = (await http('GET', `${gw.api}/api/v1/audit`, { token: ADMIN })).json.events as { event: string; detail: string; target: string }[];
  assert.deepEqual(audit.filter((e) => e.event === 'grant.refused').map((e) => e.detail.split(':')[0]), ['refused_by_allowlist', 'refused_by_allowlist']);
  assert.match(audit.find((e) => e.event === 'grant')!.detail, /^granted; access_port \d+$/);
  assert.equal(hits, 0);
  await ag.stop();
  await gw.cleanup();
  secret.server.close();
});

test('an agent that does not tell its allowlist (seed-only) still works: the grant is made with a warning, and the agent refuses the connection', async () => {
  const gw = await gateway();
  let hits = 0;
  const secret = await listen((s) => { hits++; s.end('secret'); }, '127.0.0.6');
  const ag = await agent(gw.servPort, { lan_nets: ['127.0.0.1/32'], seed_only: true });
  await online(gw, 'home', true);
  const g = await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: secret.port, host: '127.0.0.6' } });
  assert.equal(g.status, 201);
  assert.match(g.json.warnings[0], /could not be checked against backend "home"'s allowlist: the agent has not told its allowlist/);
  assert.equal((await http('GET', `${gw.api}/api/v1/backends`, { token: ADMIN })).json.backends[0].allowlist, null);
  const s = await dial(g.json.access_port);
  const got = await readAll(s, 5000);
  assert.equal(got.data.length, 0);
  assert.equal(hits, 0);
  const audit = (await http('GET', `${gw.api}/api/v1/audit`, { token: ADMIN })).json.events as { event: string; detail: string }[];
  assert.match(audit.find((e) => e.event === 'grant')!.detail, /^granted_unchecked; /);
  await ag.stop();
  // Offline: granted, with the warning that says so, and the audit log tells it apart.
  await waitFor(() => !gw.gateway.agents.get('home'), 5000, 'agent gone');
  const off = await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: 22 } });
  assert.equal(off.status, 201);
  assert.match(off.json.warnings[0], /backend "home" is offline/);
  const audit2 = (await http('GET', `${gw.api}/api/v1/audit`, { token: ADMIN })).json.events as { event: string; detail: string }[];
  assert.match(audit2.find((e) => e.event === 'grant')!.detail, /^backend_offline; access_port \d+$/);
  await gw.cleanup();
  secret.server.close();
});
