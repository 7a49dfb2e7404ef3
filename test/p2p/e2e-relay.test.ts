import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Forwarder } from '../../src/connect/forwarder.ts';
import { silentLogger } from '../../src/util/log.ts';
import { ADMIN, gateway } from '../helpers/stack.ts';
import { dial, echoServer, hashUntilEnd, http, listen, readAll, sendPattern, waitFor } from '../helpers/net.ts';
import { e2eStack, tap } from '../helpers/e2e.ts';
import { dk } from '../helpers/cli.ts';
import { parseProm, sample } from '../helpers/prom.ts';

const metricValue = (text: string, name: string, labels: Record<string, string> = {}): number | undefined => sample(parseProm(text), name, labels);

/**
 * dk connect's end-to-end path over loopback (docs/p2p.md §9): the link runs between the client and
 * the agent, through the gateway's relay. On loopback no direct path can form (loopback addresses
 * are never dialled as candidates), so these tests hold the relayed path and what the gateway
 * sees of it; test/p2p/e2e-lab-*.test.ts take the direct path through real NATs.
 */
const stack = (t: TestContext, over: Record<string, unknown> = {}) => e2eStack(t, { gatewayOver: over });

function forwarder(gatewayPort: number, gw: Awaited<ReturnType<typeof gateway>>, port: number, paths: string[], over: Partial<ConstructorParameters<typeof Forwarder>[0]> = {}): Forwarder {
  return new Forwarder({
    gatewayHost: '127.0.0.1', gatewayPort, gatewayKey: gw.gateway.linkKey.publicRaw, token: ADMIN,
    backend: 'home', port, bind: '127.0.0.1', localPort: 0, log: silentLogger, onPath: (e) => paths.push(e.line), ...over,
  });
}

test('end-to-end, relayed: 16 MiB each way exact; the bytes on the wire at the gateway never hold the plaintext', async (t) => {
  const { gw, ag } = await stack(t);
  const MiB = 2 ** 20;
  // The target sends a known pattern and hashes what it gets; the client does the same the other way.
  const marker = Buffer.from('PLAINTEXT-MARKER-0123456789abcdef');
  const payload = Buffer.alloc(16 * MiB);
  for (let i = 0; i < payload.length; i += marker.length) marker.copy(payload, i);
  const results: Promise<{ hash: string; bytes: number; firstBadOffset: number }>[] = [];
  const target = await listen((sock) => {
    results.push(hashUntilEnd(sock, 21));
    sock.end(payload);
  });
  t.after(() => target.server.close());
  const wire = await tap(gw.servPort);
  t.after(() => wire.close());
  const paths: string[] = [];
  const fwd = forwarder(wire.port, gw, target.port, paths);
  t.after(() => fwd.close());
  const local = await dial(await fwd.listen());
  const got = readAll(local, 60_000);
  const sent = await sendPattern(local, 21, 16 * MiB);
  const down = await got;
  const up = await results[0]!;
  assert.equal(down.data.length, payload.length, 'all of the target\'s bytes arrived');
  assert.ok(down.data.equals(payload), 'exact, in order');
  assert.equal(up.bytes, 16 * MiB);
  assert.equal(up.hash, sent, 'the target got the client\'s bytes exactly');
  assert.equal(up.firstBadOffset, -1);
  // Every byte crossed the tap (client ⇄ gateway, the control link and the relayed transports): none in clear.
  assert.ok(wire.total() > 32 * MiB, `the tap carried the transfer (${wire.total()} bytes)`);
  assert.equal(wire.bytes().indexOf(marker), -1, 'the known plaintext never crossed the gateway\'s wire');
  assert.equal(gw.gateway.sessions.size, 0, 'the gateway carried no session itself');
  assert.equal(ag.e2e?.links, 1, 'one end-to-end link at the agent');
  assert.match(paths[0] ?? '', /^path=relay reason="the link starts on the relay; trying a direct path"$/);
  // On loopback the punch has nothing to dial: the next report says why, per candidate.
  await waitFor(() => paths.length >= 2, 15_000, 'the punch report');
  assert.match(paths[1]!, /^path=relay reason="no direct path/);
  console.log(`# end-to-end relayed: 16 MiB each way exact; ${wire.total()} bytes on the gateway's wire, no plaintext; ${paths.join(' | ')}`);
});

test('GET /api/v1/links lists the agent and the end-to-end client with its path; Prometheus counts punches and relay pairs', async (t) => {
  const { gw } = await stack(t);
  const echo = await echoServer();
  t.after(() => echo.server.close());
  const paths: string[] = [];
  const fwd = forwarder(gw.servPort, gw, echo.port, paths);
  t.after(() => fwd.close());
  const s = await dial(await fwd.listen());
  s.end('hello');
  assert.equal((await readAll(s)).data.toString(), 'hello');
  await waitFor(() => paths.length >= 2, 15_000, 'the punch report');
  const r = await http('GET', `${gw.api}/api/v1/links`, { token: ADMIN });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.p2p, 'auto');
  assert.equal(r.json.agents.length, 1);
  assert.equal(r.json.agents[0].backend, 'home');
  assert.equal(r.json.agents[0].e2e, true);
  assert.equal(r.json.clients.length, 1, r.text);
  const c = r.json.clients[0];
  assert.equal(c.user, 'admin');
  assert.equal(c.backend, 'home');
  assert.equal(c.target, `127.0.0.1:${echo.port}`);
  assert.equal(c.path, 'relay');
  assert.equal(c.punches.failed, 1);
  assert.ok(c.changes.length >= 2 && c.changes.every((ch: { reason: string }) => ch.reason.startsWith('path=relay')), JSON.stringify(c.changes));
  assert.equal(c.path_changes, 0, 'two decisions, both relay: no path change');
  const text = (await http('GET', `${gw.api}/metrics`, { token: ADMIN })).text;
  assert.equal(metricValue(text, 'dk_p2p_punches_total', { outcome: 'failed' }), 1);
  assert.ok((metricValue(text, 'dk_p2p_relay_pairs_total') ?? 0) >= 1);
  assert.equal(metricValue(text, 'dk_p2p_clients', { path: 'relay' }), 1);
  // The same through the real CLI: the agent link, then the client with its path and last reason.
  const cli = dk(['links', '--api', gw.api], { env: { DK_TOKEN: ADMIN, XDG_CONFIG_HOME: gw.dataDir } });
  const { code } = await cli.exited;
  assert.equal(code, 0, cli.err());
  assert.match(cli.out(), /^BACKEND\s+REMOTE\s+SINCE\s+RTT\s+RESUMES\s+E2E\nhome\s+127\.0\.0\.1:\d+\s+.*\byes\n\nCLIENT\s+USER\s+BACKEND\s+TARGET\s+PATH\s+RTT\s+SINCE\s+CHANGES\s+WHY\n/);
  assert.match(cli.out(), new RegExp(`\\badmin\\s+home\\s+127\\.0\\.0\\.1:${echo.port}\\s+relay\\s+(?:\\d+ ms|-)\\s+\\S+ ago\\s+0\\s+path=relay reason="no direct path`), 'CHANGES counts path changes (none), not decisions');
  // The audit names the authorization (the gateway sees no session of an end-to-end link).
  assert.ok(gw.gateway.audit.recent(50).some((row) => row.event === 'e2e_link' && row.user === 'admin'));
  fwd.close();
  await waitFor(() => gw.gateway.e2e.clients.size === 0, 5000, 'the client gone from the list');
});

test('p2p switches: the gateway\'s "relay" gives no direct path and says why; "off" keeps the gateway\'s path and says why; --p2p off asks for none', async (t) => {
  const echo = await echoServer();
  t.after(() => echo.server.close());
  for (const [mode, clientP2p, want] of [
    ['relay', 'auto', /^path=relay reason="direct paths are off: the gateway allows relayed paths only \(p2p: relay\)"$/],
    ['auto', 'off', /^path=relay reason="direct paths are off: this client asked for no direct path \(--p2p off\)"$/],
    ['off', 'auto', /^path=gateway reason="the gateway has end-to-end paths off \(p2p: off\)"$/],
  ] as const) {
    const { gw } = await stack(t, { p2p: mode });
    const paths: string[] = [];
    const fwd = forwarder(gw.servPort, gw, echo.port, paths, { p2p: clientP2p });
    const s = await dial(await fwd.listen());
    s.end(`via ${mode}`);
    assert.equal((await readAll(s)).data.toString(), `via ${mode}`);
    assert.match(paths[0] ?? '', want, `gateway ${mode}, client ${clientP2p}`);
    assert.equal(gw.gateway.e2e.clients.size, mode === 'off' ? 0 : 1, `gateway ${mode}: end-to-end clients`);
    // GET /api/v1/links lists every dk connect client, on the gateway's path too.
    const links = await http('GET', `${gw.api}/api/v1/links`, { token: ADMIN });
    assert.deepEqual(links.json.clients.map((c: { path: string; user: string }) => [c.user, c.path]), [['admin', mode === 'off' ? 'gateway' : 'relay']], links.text);
    fwd.close();
  }
});

test('a user removed while an end-to-end link lives: the gateway ends the control link and the agent ends the link', async (t) => {
  const { gw, ag } = await stack(t);
  const echo = await echoServer();
  t.after(() => echo.server.close());
  const carol = gw.gateway.users.create('carol', { permissions: { backends: ['home'], hosts: ['*'], ports: '1-65535' } });
  const fwd = forwarder(gw.servPort, gw, echo.port, [], { token: carol.token });
  t.after(() => fwd.close());
  const s = await dial(await fwd.listen());
  s.write('before');
  await waitFor(() => ag.e2e?.links === 1, 5000, 'the end-to-end link');
  gw.gateway.users.remove('carol');
  await waitFor(() => ag.e2e?.links === 0, 15_000, 'the agent ended the link');
  const r = await readAll(s, 10_000);
  assert.equal(r.data.toString(), 'before', 'what was echoed before arrived; then the session ended');
});
