import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import type { Socket } from 'node:net';
import { after, before, test } from 'node:test';
import type { Agent } from '../../src/agent/agent.ts';
import { Forwarder } from '../../src/connect/forwarder.ts';
import type { Mux } from '../../src/mux/mux.ts';
import {
  Command, Decoder, decodeExposeReply, encodeCmd, encodeExpose, ExposeStatus, FrameType, ipToBytes, type Frame,
} from '../../src/protocol/index.ts';
import { silentLogger } from '../../src/util/log.ts';
import { ADMIN, agent, gateway, KEY, online } from '../helpers/stack.ts';
import { dial, echoServer, http, readAll, waitFor } from '../helpers/net.ts';
import { plainAgent } from '../helpers/hostile.ts';
import { recorder } from '../mux/helpers.ts';

/**
 * The gateway's per-link and per-agent caps, each set small by config: sessions per link (agent
 * links and dk connect links), static tunnels per agent, PORT QUERYs waiting per agent link.
 */
const EVIL_KEY = 'evil-backend-key-0123';
const CAP = 3;
const EXPOSES = 5;
const base = randomInt(40_000, 50_000);

let gw: Awaited<ReturnType<typeof gateway>>;
let ag: Agent;
let echo: Awaited<ReturnType<typeof echoServer>>;

before(async () => {
  gw = await gateway({
    backends: { home: { key: KEY }, evil: { key: EVIL_KEY } },
    max_sessions_per_link: CAP, max_exposes_per_agent: EXPOSES, max_pending_scans: 2, scan_timeout: 2,
    expose_ports: `${base}-${base + 199}`, keepalive: 5,
  });
  ag = await agent(gw.servPort);
  echo = await echoServer();
  await online(gw);
});
after(async () => { await ag.stop(); await gw.cleanup(); echo.server.close(); });

async function counter(name: 'connectionsRefused' | 'sessionsRefused' | 'limitsHit', label: string): Promise<number> {
  const m = await gw.gateway.metrics[name].get();
  return m.values.find((v) => Object.values(v.labels).includes(label))?.value ?? 0;
}

async function echoed(s: Socket, text: string): Promise<string> {
  s.write(text);
  return new Promise((resolve) => s.once('data', (c: Buffer) => resolve(c.toString())));
}

test('max_sessions_per_link on a dk connect link: the (cap+1)th OPN is refused with CLS and counted', async () => {
  const fw = new Forwarder({
    gatewayHost: '127.0.0.1', gatewayPort: gw.servPort, gatewayKey: gw.gateway.linkKey.publicRaw, token: ADMIN,
    backend: 'home', port: echo.port, bind: '127.0.0.1', localPort: 0, log: silentLogger,
    e2e: false, // the gateway's own cap: on the gateway's path (an end-to-end link's is the agent's max_sessions)
  });
  try {
    const mux: Mux = await fw.open();
    const before = await counter('sessionsRefused', 'session_cap');
    // The client's own mux would refuse a fourth open() at its cap (4096); this one opens freely.
    const rs = Array.from({ length: CAP + 1 }, () => {
      const s = mux.open(echo.port, '127.0.0.1');
      const r = recorder();
      s.attach(r, () => undefined);
      return { s, r };
    });
    await waitFor(() => rs[CAP]!.r.reason !== null, 5000, 'the fourth session closed');
    assert.equal(rs[CAP]!.r.reason, 'remote', 'closed by the gateway (CLS)');
    for (const { s, r } of rs.slice(0, CAP)) {
      s.write(Buffer.from('ping'));
      await waitFor(() => r.bytes === 4, 5000, 'echo through an accepted session');
    }
    assert.equal(await counter('sessionsRefused', 'session_cap') - before, 1);
  } finally {
    fw.close();
  }
  await waitFor(() => gw.gateway.sessions.size === 0, 5000, 'sessions gone');
});

test('max_sessions_per_link on an agent link: a client connection beyond it is closed cleanly and counted', async () => {
  const g = await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: echo.port } });
  assert.ok(g.status === 200 || g.status === 201, `access: ${g.status}`);
  const before = await counter('connectionsRefused', 'session_cap');
  const open: Socket[] = [];
  for (let i = 0; i < CAP; i++) {
    const s = await dial(g.json.access_port);
    assert.equal(await echoed(s, `s${i}`), `s${i}`);
    open.push(s);
  }
  const over = await dial(g.json.access_port);
  over.write('x');
  const r = await readAll(over, 5000);
  assert.equal(r.data.length, 0, 'no byte for the connection beyond the cap');
  assert.equal(await counter('connectionsRefused', 'session_cap') - before, 1);
  // The sessions that fit keep working, and once one ends a new one fits again.
  assert.equal(await echoed(open[0]!, 'still'), 'still');
  open[0]!.destroy();
  await waitFor(() => gw.gateway.agents.get('home')!.mux.sessions.size < CAP, 5000, 'a session ended');
  const again = await dial(g.json.access_port);
  assert.equal(await echoed(again, 'again'), 'again');
  for (const s of [...open, again]) s.destroy();
});

test('max_exposes_per_agent: an agent asking for 200 static tunnels at once gets at most the cap; the rest are REFUSED with a message', async (t) => {
  const peer = await plainAgent(gw.servPort, 'evil', EVIL_KEY);
  t.after(() => peer.close());
  await waitFor(() => (gw.gateway.agents.get('evil')?.mux.features ?? 0) !== 0, 5000, 'evil online');
  const answers: { id: number; status: number; message: string }[] = [];
  const dec = new Decoder();
  peer.socket.on('data', (c: Buffer) => dec.push(c, (f: Frame) => {
    if (f.type === FrameType.CMD && f.command === Command.EXPOSE) answers.push({ id: f.id, ...decodeExposeReply(f.params) });
  }));
  peer.socket.resume();
  const reqs = Array.from({ length: 200 }, (_, i) => encodeCmd(i + 1, Command.EXPOSE, encodeExpose({
    remotePort: base + i, targetPort: echo.port, target: ipToBytes('127.0.0.1'), allow: [],
  })));
  peer.socket.write(Buffer.concat(reqs));
  await waitFor(() => answers.length === 200, 10_000, 'an answer to every EXPOSE');
  const ok = answers.filter((a) => a.status === ExposeStatus.OK);
  const capped = answers.filter((a) => a.status === ExposeStatus.REFUSED && a.message.includes('max_exposes_per_agent'));
  console.log(`# 200 EXPOSE requests: ${ok.length} published, ${capped.length} refused at the cap, ${200 - ok.length - capped.length} other answers (port in use)`);
  assert.ok(ok.length <= EXPOSES, `${ok.length} published`);
  assert.ok(capped.length >= 200 - EXPOSES - 10, `${capped.length} refused at the cap`);
  assert.ok(gw.gateway.exposes().filter((e) => e.backend === 'evil').length <= EXPOSES, 'listeners held');
  assert.ok(await counter('limitsHit', 'max_exposes_per_agent') >= capped.length);
});

test('max_pending_scans: a third PORT QUERY towards an agent that answers none is refused with 429 too_many_scans', async (t) => {
  const peer = await plainAgent(gw.servPort, 'evil', EVIL_KEY); // never answers PORT QUERY
  t.after(() => peer.close());
  await waitFor(() => (gw.gateway.agents.get('evil')?.mux.features ?? 0) !== 0, 5000, 'evil online');
  const url = `${gw.api}/api/v1/backends/evil/scan?port=22`;
  const first = [http('GET', url, { token: ADMIN }), http('GET', url, { token: ADMIN })];
  await waitFor(() => gw.gateway.agents.pendingScans(gw.gateway.agents.get('evil')!) === 2, 5000, 'two scans pending');
  const third = await http('GET', url, { token: ADMIN });
  assert.equal(third.status, 429);
  assert.equal(third.json.error.code, 'too_many_scans');
  assert.match(third.json.error.message, /max_pending_scans/);
  const done = await Promise.all(first);
  assert.deepEqual(done.map((r) => [r.status, r.json.complete]), [[200, false], [200, false]], 'the two waited for the timeout');
  const fourth = http('GET', url, { token: ADMIN });
  await waitFor(() => gw.gateway.agents.pendingScans(gw.gateway.agents.get('evil')!) === 1, 5000, 'room again');
  peer.close();
  assert.equal((await fourth).status, 200, 'once the first two were done, a new scan was let through (it ends with the link)');
});
