import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { makeHandshake } from '../../src/auth/handshake.ts';
import { ADMIN, agent, gateway, KEY, online } from '../helpers/stack.ts';
import { dial, echoServer, http, readAll, waitFor } from '../helpers/net.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Sends bytes and reports how the server ended the connection, and how fast. */
async function poke(port: number, bytes: Buffer | null, timeoutMs = 5000): Promise<{ data: Buffer; ms: number }> {
  const t0 = Date.now();
  const s = await dial(port);
  if (bytes) s.write(bytes);
  const r = await readAll(s, timeoutMs);
  s.destroy();
  return { data: r.data, ms: Date.now() - t0 };
}

async function stillServes(gw: Awaited<ReturnType<typeof gateway>>, echoPort: number): Promise<void> {
  const g = await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: echoPort } });
  assert.equal(g.status, 201, 'API still answers');
  const s = await dial(g.json.access_port);
  s.end('alive');
  assert.equal((await readAll(s, 3000)).data.toString(), 'alive', 'tunnel still works');
}

test('serv_port: junk, wrong HMAC, replay, slow-loris, bad frames after auth: clean close, gateway keeps serving', async (t) => {
  const gw = await gateway({ handshake: 0.5 });
  const echo = await echoServer();
  const ag = await agent(gw.servPort);
  t.after(async () => { await ag.stop(); await gw.cleanup(); echo.server.close(); });
  await online(gw);

  const junk = await poke(gw.servPort, randomBytes(4096));
  assert.equal(junk.data.length, 0, 'junk: closed, nothing sent back');
  const wrong = await poke(gw.servPort, makeHandshake('home', 'not-the-key'));
  assert.equal(wrong.data.length, 0, 'wrong HMAC: closed');
  const unknown = await poke(gw.servPort, makeHandshake('nobody', KEY));
  assert.equal(unknown.data.length, 0, 'unknown name: closed');
  const slow = await poke(gw.servPort, Buffer.alloc(10), 5000);
  assert.ok(slow.ms >= 400 && slow.ms < 2500, `slow-loris closed at the handshake deadline (${slow.ms} ms)`);
  const silent = await poke(gw.servPort, null, 5000);
  assert.ok(silent.ms < 2500, 'a silent connection is closed at the deadline');
  // One deadline covers telling link from plain apart and the plain handshake: a prefix of the
  // link magic first, plain bytes later, and the connection still closes at the first deadline.
  const tricky = await dial(gw.servPort);
  const t0 = Date.now();
  tricky.write('D');
  // The 300 ms gap is the point: the plain bytes come well after the link-magic prefix.
  setTimeout(() => tricky.write('Xplain-looking bytes'), 300);
  await readAll(tricky, 5000);
  const trickyMs = Date.now() - t0;
  assert.ok(trickyMs >= 400 && trickyMs < 750, `closed ${trickyMs} ms after connecting (deadline 500 ms)`);

  // Replay: a handshake that was accepted once is refused the second time.
  const hs = makeHandshake('other', 'other-key-123');
  gw.gateway.addBackend('other', 'other-key-123');
  const first = await dial(gw.servPort);
  first.write(hs);
  await waitFor(() => !!gw.gateway.agents.get('other'), 3000, 'first use accepted');
  first.destroy();
  await waitFor(() => !gw.gateway.agents.get('other'), 3000);
  const replay = await poke(gw.servPort, hs);
  assert.equal(replay.data.length, 0);
  assert.equal(gw.gateway.agents.get('other'), undefined, 'replayed handshake refused');

  // After a valid handshake, protocol violations close only that link.
  for (const [what, bytes] of [
    ['L below header', Buffer.from('0003', 'hex')],
    ['CLS with payload', Buffer.from('0009000000010000ff', 'hex')],
    ['OPN with a bad length', Buffer.from('400d00000001001601020304ff', 'hex')],
    ['CMD without a command byte', Buffer.from('c00600000000', 'hex')],
    // Random bytes may parse as the start of a long frame; then dead-link detection (3 × keepalive
    // = 3 s here, with no PING answered) closes the link instead of the decoder.
    ['random garbage', randomBytes(2000)],
  ] as const) {
    const s = await dial(gw.servPort);
    s.write(Buffer.concat([makeHandshake('other', 'other-key-123'), bytes]));
    const r = await readAll(s, 8000);
    assert.ok(r.eof || r.error, `${what}: link closed`);
  }
  // Truncated frame then close: nothing breaks.
  const tr = await dial(gw.servPort);
  tr.end(Buffer.concat([makeHandshake('other', 'other-key-123'), Buffer.from('8100000000', 'hex')]));
  await readAll(tr, 3000);
  await stillServes(gw, echo.port);
});

test('management API: malformed JSON, wrong types, huge bodies, slow headers: 4xx or close, and it keeps serving', async (t) => {
  const gw = await gateway({ max_body: 4096 });
  const echo = await echoServer();
  const ag = await agent(gw.servPort);
  t.after(async () => { await ag.stop(); await gw.cleanup(); echo.server.close(); });
  await online(gw);
  const url = `${gw.api}/api/v1/access`;
  assert.equal((await http('POST', url, { token: ADMIN, body: '{"backend": "home", "port": 22' })).status, 400);
  assert.equal((await http('POST', url, { token: ADMIN, body: '{"backend": "home", "port": "22"}' })).status, 400);
  assert.equal((await http('POST', url, { token: ADMIN, body: '[1,2,3]' })).status, 400);
  assert.equal((await http('POST', url, { token: ADMIN, body: '{"backend":"home","port":22,"host":"not-an-ip"}' })).status, 400);
  assert.equal((await http('POST', url, { token: ADMIN, body: '{"backend":"home","port":22,"extra":1}' })).status, 400);
  assert.equal((await http('POST', url, { token: ADMIN, body: 'x'.repeat(1024 * 1024) })).status, 413);
  assert.equal((await http('POST', url, { token: ADMIN, body: '\u0000\u0001garbage' })).status, 400);
  assert.equal((await http('GET', `${gw.api}/api/v1/backends/home/scan?port=abc`, { token: ADMIN })).status, 400);
  assert.equal((await http('GET', `${gw.api}/nope`)).status, 404);
  // Raw garbage instead of HTTP: 400 and close.
  const raw = await poke(gw.mgmtPort, Buffer.from('\x16\x03\x01garbage\r\n\r\n'));
  assert.match(raw.data.toString(), /^HTTP\/1\.1 400/);
  // Slow headers: the server gives up on its own.
  gw.http.headersTimeout = 500;
  gw.http.requestTimeout = 1000;
  const slow = await poke(gw.mgmtPort, Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\n'), 10_000);
  assert.ok(slow.ms < 5000, `slow headers dropped after ${slow.ms} ms`);
  await stillServes(gw, echo.port);
});

test('memory stays bounded under a flood of junk connections on every port', async (t) => {
  const gw = await gateway({ handshake: 0.3 });
  const echo = await echoServer();
  const ag = await agent(gw.servPort);
  t.after(async () => { await ag.stop(); await gw.cleanup(); echo.server.close(); });
  await online(gw);
  const g = await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: echo.port } });
  const ports = [gw.servPort, gw.mgmtPort, g.json.access_port as number];
  // The gateway's end of each API connection, by the client's port: serv_port and the access
  // port close junk (bad handshake, no grant for 127.0.0.7), but the API may hold a junk
  // connection open until its header deadline, so there "handled" means all its bytes were read.
  const apiSide = new Map<number, Socket>();
  let apiOpen = 0;
  gw.http.on('connection', (s: Socket) => {
    apiSide.set(s.remotePort ?? 0, s);
    apiOpen++;
    s.once('close', () => apiOpen--);
  });
  const round = async (): Promise<void> => {
    apiSide.clear();
    const socks: Socket[] = [];
    const closed = new Set<Socket>();
    for (let i = 0; i < 300; i++) {
      const s = connect({ host: '127.0.0.1', port: ports[i % 3]!, localAddress: '127.0.0.7' });
      s.on('error', () => undefined);
      s.on('connect', () => s.write(randomBytes(8192)));
      s.on('close', () => closed.add(s));
      socks.push(s);
    }
    const handled = (s: Socket): boolean => closed.has(s) || (s.localPort !== undefined && (apiSide.get(s.localPort)?.bytesRead ?? 0) >= 8192);
    await waitFor(() => socks.every(handled), 10_000, 'the gateway to close or read in full every junk connection');
    for (const s of socks) s.destroy();
  };
  await round();
  gc();
  const before = process.memoryUsage();
  for (let i = 0; i < 5; i++) await round();
  await waitFor(() => apiOpen === 0, 10_000, 'the gateway to let go of the API connections the test dropped');
  gc();
  const after = process.memoryUsage();
  const grew = (after.heapUsed - before.heapUsed) / 2 ** 20;
  console.log(`# heap ${(before.heapUsed / 2 ** 20).toFixed(1)} MiB → ${(after.heapUsed / 2 ** 20).toFixed(1)} MiB after 1500 junk connections`);
  assert.ok(grew < 16, `heap grew ${grew.toFixed(1)} MiB`);
  await stillServes(gw, echo.port);
});
