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

test('through the real gateway: a grant for a host outside lan_nets yields a closed connection', async () => {
  const gw = await gateway();
  let hits = 0;
  const secret = await listen((s) => { hits++; s.end('secret'); }, '127.0.0.6');
  const ag = await agent(gw.servPort, { lan_nets: ['127.0.0.1/32'] });
  await online(gw);
  const g = (await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: secret.port, host: '127.0.0.6' } })).json;
  const s = await dial(g.access_port);
  const got = await readAll(s, 5000);
  assert.equal(got.data.length, 0);
  assert.equal(hits, 0);
  await ag.stop();
  await gw.cleanup();
  secret.server.close();
});
