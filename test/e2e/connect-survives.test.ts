import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { Forwarder } from '../../src/connect/forwarder.ts';
import type { LinkStream } from '../../src/link/stream.ts';
import { silentLogger } from '../../src/util/log.ts';
import { ADMIN, agent, gateway, online } from '../helpers/stack.ts';
import { dial, echoServer, hashUntilEnd, listen, readAll, sendPattern, waitFor } from '../helpers/net.ts';
import { generateKeyPair } from '../../src/link/crypto.ts';
import { connectLink } from '../../src/link/client.ts';
import { Purpose, readLine } from '../../src/connect/protocol.ts';

/** These tests are of the gateway's path (p2p: off): the gateway carries each session; test/p2p/e2e-*.test.ts has the end-to-end path. */
const LINK = { link_keepalive: 0.1, link_detach_timeout: 10, p2p: 'off' };

async function stack(t: { after(f: () => unknown): void }) {
  const gw = await gateway(LINK);
  const ag = await agent(gw.servPort, { keepalive: 0.1, link_resume: 10 });
  const echo = await echoServer();
  await online(gw);
  const fwd = new Forwarder({
    gatewayHost: '127.0.0.1', gatewayPort: gw.servPort, gatewayKey: gw.gateway.linkKey.publicRaw, token: ADMIN,
    backend: 'home', port: echo.port, bind: '127.0.0.1', localPort: 0, log: silentLogger, pingMs: 100, deadMs: 300, resumeForMs: 10_000,
  });
  const localPort = await fwd.listen();
  t.after(async () => { fwd.close(); await ag.stop(); await gw.cleanup(); echo.server.close(); });
  const agentLink = (): LinkStream => ag.mux!.link as LinkStream;
  const clientLink = (): LinkStream => [...fwd.streams][0]!;
  return { gw, ag, echo, fwd, localPort, agentLink, clientLink };
}

test('dk connect: an interactive session keeps its bytes exact while the client link and the agent link are killed, again and again', async (t) => {
  const { gw, localPort, agentLink, clientLink } = await stack(t);
  const s = await dial(localPort);
  let received = '';
  s.on('data', (d: Buffer) => { received += d.toString(); });
  const agentResumes0 = agentLink().stats.attaches;
  let expected = '';
  let kills = 0;
  for (let round = 0; round < 60; round++) {
    const line = `line ${round} ${'x'.repeat(round * 37)}\n`;
    expected += line;
    s.write(line);
    // Kill the client's link, the agent's link, or both at once, every few rounds.
    if (round % 4 === 1) { clientLink().dropConnection('test: client network drops'); kills++; }
    if (round % 4 === 2) { agentLink().dropConnection('test: agent network drops'); kills++; }
    if (round % 4 === 3) { clientLink().dropConnection('both'); agentLink().dropConnection('both'); kills += 2; }
    await waitFor(() => received.length >= expected.length, 10_000, `echo of round ${round}`);
    assert.equal(received, expected, `round ${round}: bytes differ`);
  }
  console.log(`# dk connect: 60 echo rounds exact across ${kills} killed links; agent link resumed ${agentLink().stats.attaches - agentResumes0} times, client link ${clientLink().stats.attaches - 1} times`);
  assert.ok(kills >= 40);
  assert.equal(gw.gateway.sessions.size, 1, 'one session the whole time');
  s.end();
});

test('dk connect: 32 MiB each way through drops on both links, exact', async (t) => {
  const { localPort, agentLink, clientLink, gw } = await stack(t);
  const big = await listen((sock) => {
    const recv = hashUntilEnd(sock, 11);
    void sendPattern(sock, 12, 32 * 2 ** 20).then(async () => { const r = await recv; sock.destroy(); void r; }).catch(() => undefined);
    results.push(recv);
  });
  const results: Promise<{ hash: string; bytes: number; firstBadOffset: number }>[] = [];
  t.after(() => big.server.close());
  const fwd2 = new Forwarder({
    gatewayHost: '127.0.0.1', gatewayPort: gw.servPort, gatewayKey: gw.gateway.linkKey.publicRaw, token: ADMIN,
    backend: 'home', port: big.port, bind: '127.0.0.1', localPort: 0, log: silentLogger, pingMs: 100, deadMs: 300,
  });
  const port2 = await fwd2.listen();
  t.after(() => fwd2.close());
  void localPort; void clientLink;
  const s = await dial(port2);
  const got = hashUntilEnd(s, 12);
  let drops = 0;
  const dropper = setInterval(() => {
    const c = [...fwd2.streams][0];
    if (drops % 2 === 0) c?.dropConnection('test'); else agentLink().dropConnection('test');
    drops++;
  }, 60);
  const sent = await sendPattern(s, 11, 32 * 2 ** 20);
  const down = await got;
  clearInterval(dropper);
  const up = await results[0]!;
  console.log(`# dk connect: 32 MiB each way with ${drops} link drops`);
  assert.equal(down.bytes, 32 * 2 ** 20);
  assert.equal(down.firstBadOffset, -1);
  assert.equal(up.firstBadOffset, -1);
  assert.equal(up.hash, sent);
  assert.ok(drops >= 5);
});

test('dk connect: a bad token or a forbidden target is refused with a reason; the local connection closes', async (t) => {
  const { gw, echo } = await stack(t);
  const base = {
    gatewayHost: '127.0.0.1', gatewayPort: gw.servPort, gatewayKey: gw.gateway.linkKey.publicRaw,
    backend: 'home', port: echo.port, bind: '127.0.0.1', localPort: 0, log: silentLogger,
  };
  const bad = new Forwarder({ ...base, token: 'dk_wrong' });
  await assert.rejects(bad.open(), (e: Error & { code?: string }) => e.code === 'unauthorized');
  const limited = gw.gateway.users.create('bob', { permissions: { backends: ['home'], hosts: ['*'], ports: '1' } });
  const forbidden = new Forwarder({ ...base, token: limited.token });
  await assert.rejects(forbidden.open(), (e: Error & { code?: string }) => e.code === 'forbidden');
  const p = await forbidden.listen();
  const s = await dial(p);
  const r = await readAll(s, 5000);
  assert.equal(r.data.length, 0);
  assert.equal(forbidden.refused, 1);
  forbidden.close();
});

test('an agent that pins the wrong gateway key refuses to talk: it never sends its handshake', async (t) => {
  const gw = await gateway(LINK);
  const ag = await agent(gw.servPort, { gateway_key: generateKeyPair().publicRaw.toString('base64url') });
  t.after(async () => { await ag.stop(); await gw.cleanup(); });
  const [err] = (await once(ag, 'authError')) as [Error & { code?: string }];
  assert.equal(err.code, 'DK_LINK_SERVER_AUTH');
  assert.equal(gw.gateway.agents.size, 0);
  assert.equal(gw.gateway.link.sessions.size, 0, 'no link session was set up');
});

test('dk connect: connections share one link session; each is checked again, and a removed user\'s link ends with a reason at the next connection', async (t) => {
  const { gw, localPort, fwd } = await stack(t);
  const N = 50;
  // All at once, before the link exists: they wait for the same link session.
  const socks = await Promise.all(Array.from({ length: N }, () => dial(localPort)));
  const answers = socks.map((s, i) => {
    const r = readAll(s);
    s.end(`connection ${i} ${'y'.repeat(i * 101)}`);
    return r;
  });
  const got = await Promise.all(answers);
  got.forEach((r, i) => assert.equal(r.data.toString(), `connection ${i} ${'y'.repeat(i * 101)}`, `connection ${i}`));
  assert.equal(fwd.streams.size, 1, 'one link stream at the client');
  assert.equal(gw.gateway.link.sessions.size, 2, 'two link sessions at the gateway: the agent\'s and the client\'s');
  await waitFor(() => gw.gateway.sessions.size === 0, 5000, 'sessions closed');
  const rows = gw.gateway.audit.recent(1000).filter((r) => r.event === 'session' && r.detail?.startsWith('connect '));
  assert.equal(rows.length, N, 'one audit row per connection');

  // A user who may connect, then is removed: the live link ends, the next connection is refused.
  const carol = gw.gateway.users.create('carol', { permissions: { backends: ['home'], hosts: ['*'], ports: '1-65535' } });
  const f2 = new Forwarder({ ...fwd.o, token: carol.token, localPort: 0 });
  const p2 = await f2.listen();
  t.after(() => f2.close());
  const first = await dial(p2);
  const echoed = readAll(first);
  first.end('carol was here');
  assert.equal((await echoed).data.toString(), 'carol was here');
  gw.gateway.users.remove('carol');
  const refusedAtOpn = await dial(p2);
  const r1 = await readAll(refusedAtOpn, 5000);
  assert.equal(r1.data.length, 0, 'no byte through a removed user\'s link');
  await waitFor(() => f2.streams.size === 0, 5000, 'the gateway ended the link');
  const next = await dial(p2);
  const r2 = await readAll(next, 5000);
  assert.equal(r2.data.length, 0);
  assert.equal(f2.lastRefusal?.code, 'unauthorized');
});

test('dk connect: a client without "mux" still gets one connection per link session (the older form)', async (t) => {
  const { gw, echo } = await stack(t);
  const stream = await connectLink({ host: '127.0.0.1', port: gw.servPort, serverKey: gw.gateway.linkKey.publicRaw, purpose: Purpose.CLIENT });
  // The stack's cleanup (registered first, so run first) stops the gateway, which resets this
  // session; its CLOSE may arrive before the destroy below.
  stream.on('error', () => undefined);
  t.after(() => stream.destroy());
  stream.write(JSON.stringify({ token: ADMIN, backend: 'home', port: echo.port }) + '\n');
  const reply = JSON.parse(await readLine(stream, 5000)) as { ok: boolean; session?: string };
  assert.equal(reply.ok, true);
  assert.match(reply.session ?? '', /^home\./);
  let got = '';
  stream.on('data', (d: Buffer) => { got += d.toString(); });
  stream.resume();
  stream.write('raw bytes, no frames');
  await waitFor(() => got === 'raw bytes, no frames', 5000, 'echo');
});
