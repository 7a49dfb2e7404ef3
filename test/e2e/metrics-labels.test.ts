import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { makeHandshake } from '../../src/auth/handshake.ts';
import type { LinkStream } from '../../src/link/stream.ts';
import { Command, Decoder, encodeCmd, encodeHello, Feature, FrameType, PROTOCOL_VERSION, type Frame } from '../../src/protocol/index.ts';
import { connected } from '../../src/util/connect.ts';
import { ADMIN, agent, gateway, KEY, online } from '../helpers/stack.ts';
import { dial, echoServer, http, readAll, waitFor } from '../helpers/net.ts';
import { parseProm, sample, type Sample } from '../helpers/prom.ts';

const B1_KEY = 'backend-b1-key-0123456789';

async function scrape(api: string): Promise<{ text: string; samples: Sample[] }> {
  const text = await (await fetch(`${api}/metrics`)).text();
  return { text, samples: parseProm(text) };
}

/**
 * A plain-mode agent for backend b1 that answers the gateway's timestamped PINGs with PONGs until
 * it has sent `answers` of them, and then keeps its link alive with PINGs of its own (which the
 * gateway does not answer with a measurement). The PONGs it sent are the gateway's measurements.
 */
async function countingAgent(servPort: number, answers: number): Promise<{ pongs: () => number; close: () => void }> {
  const socket = await connected(connect({ host: '127.0.0.1', port: servPort }));
  socket.on('error', () => undefined);
  socket.write(makeHandshake('b1', B1_KEY));
  socket.write(encodeCmd(0, Command.HELLO, encodeHello({ version: PROTOCOL_VERSION, features: Feature.PONG, window: 256 * 1024 })));
  let pongs = 0;
  const decoder = new Decoder();
  socket.on('data', (chunk: Buffer) => decoder.push(chunk, (f: Frame) => {
    if (f.type !== FrameType.CMD || f.command !== Command.PING || f.params.length !== 8) return;
    if (pongs < answers) {
      pongs++;
      socket.write(encodeCmd(f.id, Command.PONG, f.params));
    } else {
      socket.write(encodeCmd(0, Command.PING)); // bytes, so the gateway's dead-link timer stays quiet
    }
  }));
  return { pongs: () => pongs, close: () => socket.destroy() };
}

test('/metrics: per-backend labels for configured backends only; dk_link_rtt_seconds counts each PONG once', async (t) => {
  const gw = await gateway({ backends: { home: { key: KEY }, b1: { key: B1_KEY } }, keepalive: 0.2, sweep_interval: 0.05 });
  const ag = await agent(gw.servPort);
  const echo = await echoServer();
  t.after(async () => { await ag.stop(); await gw.cleanup(); echo.server.close(); });
  await online(gw);

  // Every configured backend has its label before anything happens; b1 is offline.
  let m = await scrape(gw.api);
  assert.equal(sample(m.samples, 'dk_backend_online', { backend: 'home' }), 1);
  assert.equal(sample(m.samples, 'dk_backend_online', { backend: 'b1' }), 0);

  // One session through an access port to home: counted under backend="home".
  const g = await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: echo.port } });
  assert.equal(g.status, 201);
  const s = await dial(g.json.access_port as number);
  s.end('hello metrics');
  assert.equal((await readAll(s)).data.toString(), 'hello metrics');
  await waitFor(() => gw.gateway.sessions.size === 0, 10_000, 'the session to end');

  // Names that are not backends never become label values: an access request, an agent handshake.
  assert.equal((await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'ghost-backend', port: 22 } })).status, 404);
  const ghost = await connected(connect({ host: '127.0.0.1', port: gw.servPort }));
  ghost.on('error', () => undefined);
  ghost.write(makeHandshake('ghost-agent', 'some-key-0123456789'));
  await readAll(ghost);

  // b1 answers exactly three PINGs.
  const b1 = await countingAgent(gw.servPort, 3);
  t.after(() => b1.close());
  await waitFor(() => b1.pongs() === 3, 10_000, 'three PONGs from b1');
  let count: number | undefined;
  const until = Date.now() + 10_000;
  while (count !== 3 && Date.now() < until) {
    count = sample((await scrape(gw.api)).samples, 'dk_link_rtt_seconds_count', { backend: 'b1' });
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(count, 3, 'three measurements recorded');
  // Several more sweeps (every 50 ms) and PING intervals (200 ms) go by with b1 online: a sweep
  // that re-recorded the last RTT would grow the count; only a new PONG may.
  await new Promise((r) => setTimeout(r, 1000));
  m = await scrape(gw.api);
  assert.equal(sample(m.samples, 'dk_backend_online', { backend: 'b1' }), 1, 'b1 still online');
  assert.equal(sample(m.samples, 'dk_link_rtt_seconds_count', { backend: 'b1' }), b1.pongs(), 'one observation per PONG sent');
  assert.equal(b1.pongs(), 3);
  assert.ok((sample(m.samples, 'dk_link_rtt_seconds_count', { backend: 'home' }) ?? 0) >= 1, 'home measured too');

  assert.equal(sample(m.samples, 'dk_sessions_total', { kind: 'grant', backend: 'home' }), 1);
  assert.equal(sample(m.samples, 'dk_bytes_total', { direction: 'up', backend: 'home' }), 'hello metrics'.length);
  assert.equal(sample(m.samples, 'dk_bytes_total', { direction: 'down', backend: 'home' }), 'hello metrics'.length);
  const backendValues = new Set(m.samples.filter((x) => 'backend' in x.labels).map((x) => x.labels.backend));
  assert.deepEqual([...backendValues].sort(), ['b1', 'home'], 'only configured backends are label values');
  assert.doesNotMatch(m.text, /ghost/);
});

test('/metrics: dk_link_resumes_total counts each resume of an agent link, by backend', async (t) => {
  const gw = await gateway({ link_keepalive: 0.1, link_detach_timeout: 10 });
  const ag = await agent(gw.servPort, { link_resume: 10 });
  t.after(async () => { await ag.stop(); await gw.cleanup(); });
  await online(gw);
  const link = (): LinkStream => ag.mux!.link as LinkStream;
  const resumes = async (): Promise<number> => sample((await scrape(gw.api)).samples, 'dk_link_resumes_total', { kind: 'agent', backend: 'home' }) ?? 0;
  assert.equal(await resumes(), 0);
  const attaches0 = link().stats.attaches;
  for (let i = 1; i <= 3; i++) {
    link().dropConnection(`test: drop ${i}`);
    await waitFor(() => link().attached && link().stats.attaches === attaches0 + i, 10_000, `resume ${i}`);
    const until = Date.now() + 10_000;
    while ((await resumes()) !== i && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await resumes(), i, `after drop ${i}`);
  }
  assert.equal(gw.gateway.agents.size, 1, 'the same agent link all along');
});
