import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { Mux } from '../../src/mux/mux.ts';
import type { MuxSession } from '../../src/mux/session.ts';
import { encodeDat } from '../../src/protocol/index.ts';
import { splice } from '../../src/mux/splice.ts';
import type { CloseReason } from '../../src/mux/session.ts';
import { pair, recorder, until, type Recorder } from './helpers.ts';

const W = 64 * 1024;

/**
 * client ⇄ (c: client mux | gateway's client-side mux: m) splice (gateway's agent-side mux: g | a: agent)
 * The client opens on c; the gateway accepts on m and splices to a session it opens on g.
 */
async function chain(): Promise<{
  c: Mux; m: Mux; g: Mux; a: Mux;
  open(): Promise<{ client: MuxSession; agent: MuxSession; reasons: CloseReason[] }>;
  /** A round trip on each link, front then back: what was in flight on them has been handled. */
  roundTrips(links?: ('front' | 'back')[]): Promise<void>;
  close(): void;
}> {
  const front = pair({ window: W }, { window: W });
  const back = pair({ window: W }, { window: W });
  const reasons = new Map<MuxSession, CloseReason[]>();
  await front.negotiated();
  await back.negotiated();
  const open = async (): Promise<{ client: MuxSession; agent: MuxSession; reasons: CloseReason[] }> => {
    const client = front.g.open(22, '127.0.0.1');
    await until(() => front.opened.at(-1)?.id === client.id, 'the OPN on the front link');
    const accepted = front.opened.at(-1)!;
    const toAgent = back.g.open(22, '127.0.0.1');
    const r: CloseReason[] = [];
    reasons.set(client, r);
    splice(accepted, toAgent, (why) => r.push(why));
    await until(() => back.opened.at(-1)?.id === toAgent.id, 'the OPN on the back link');
    return { client, agent: back.opened.at(-1)!, reasons: r };
  };
  return {
    c: front.g, m: front.a, g: back.g, a: back.a, open,
    async roundTrips(links = ['front', 'back']) {
      for (const l of links) await (l === 'front' ? front : back).roundTrip();
    },
    close() { front.g.destroy(); front.a.destroy(); back.g.destroy(); back.a.destroy(); },
  };
}

function consuming(s: MuxSession): Recorder {
  const r = recorder();
  s.attach({ ...r, data: (b) => { r.data(b); s.consumed(r.bytes); } }, () => undefined);
  return r;
}

test('splice: bytes cross two links exactly, both ways', async () => {
  const x = await chain();
  const { client, agent } = await x.open();
  const rc = consuming(client);
  const ra = consuming(agent);
  const up = randomBytes(20 * W + 123);
  const down = randomBytes(7 * W + 5);
  for (let i = 0; i < up.length; i += 10_000) client.write(up.subarray(i, i + 10_000));
  agent.write(down);
  await until(() => ra.bytes >= up.length && rc.bytes >= down.length, 'both directions to arrive');
  await x.roundTrips();
  assert.equal(ra.bytes, up.length);
  assert.equal(rc.bytes, down.length);
  assert.equal(createHash('sha256').update(Buffer.concat(ra.chunks)).digest('hex'), createHash('sha256').update(up).digest('hex'));
  assert.ok(Buffer.concat(rc.chunks).equals(down));
  x.close();
});

test('splice: credit is end to end — a reader that never consumes holds the sender to the two windows, and another session still flows', async () => {
  const x = await chain();
  const stalled = await x.open();
  const bulk = await x.open();
  const rs = recorder();
  stalled.agent.attach(rs, () => undefined); // never reports consumption
  const rb = consuming(bulk.agent);
  consuming(stalled.client);
  consuming(bulk.client);
  stalled.client.write(randomBytes(10 * W));
  const total = 40 * W;
  for (let sent = 0; sent < total; sent += W) bulk.client.write(randomBytes(W));
  await until(() => rb.bytes >= total && rs.bytes >= W, 'the bulk session to finish');
  await x.roundTrips();
  assert.equal(rb.bytes, total, 'the other session delivered everything');
  assert.equal(rs.bytes, W, 'the stalled reader got one window');
  // What the gateway holds for the stalled session is bounded by one window (its inbound credit).
  const held = [...x.g.sessions.values()].reduce((n, s) => n + s.pendingBytes, 0);
  assert.ok(held <= W, `gateway holds ${held} bytes for the stalled session`);
  assert.ok(stalled.client.pendingBytes >= 8 * W - held, `the rest waits at the client (${stalled.client.pendingBytes} bytes)`);
  x.close();
});

test('splice: FIN travels each way (half-close) and both sessions end as done', async () => {
  const x = await chain();
  const { client, agent, reasons } = await x.open();
  const rc = consuming(client);
  const ra = consuming(agent);
  client.write(Buffer.from('request'));
  client.end();
  await until(() => ra.ended, 'the FIN at the agent');
  assert.equal(ra.ended, true, 'the agent saw the client\'s FIN');
  assert.equal(Buffer.concat(ra.chunks).toString(), 'request');
  agent.write(Buffer.from('answer after half-close'));
  agent.end();
  await until(() => rc.reason !== null && ra.reason !== null && reasons.length > 0, 'both ends and the splice to finish');
  await x.roundTrips();
  assert.equal(Buffer.concat(rc.chunks).toString(), 'answer after half-close');
  assert.equal(rc.reason, 'done');
  assert.equal(ra.reason, 'done');
  assert.deepEqual(reasons, ['done']);
  assert.equal(x.m.sessions.size + x.g.sessions.size, 0, 'the gateway forgot both');
  x.close();
});

test('splice: an abort at either end reaches the other; a lost link aborts the far end', async () => {
  const x = await chain();
  const one = await x.open();
  const rc1 = consuming(one.client);
  consuming(one.agent);
  one.agent.close();
  await until(() => rc1.reason !== null && one.reasons.length > 0, 'the abort to reach the client');
  await x.roundTrips();
  assert.equal(rc1.reason, 'remote', 'the client saw the agent\'s abort');
  assert.deepEqual(one.reasons, ['remote']);

  const two = await x.open();
  consuming(two.client);
  const ra2 = consuming(two.agent);
  x.c.destroy(); // the client's link is gone for good
  await until(() => ra2.reason !== null && two.reasons.length > 0, 'the abort to reach the agent');
  await x.roundTrips(['back']); // the front link is gone
  assert.equal(ra2.reason, 'remote', 'the agent\'s session was aborted');
  assert.deepEqual(two.reasons, ['link']);
  assert.equal(x.g.sessions.size, 0);
  x.close();
});

test('the frames of one link read cross the splice as one write to the far link, not one per frame', async () => {
  const front = pair();
  const back = pair();
  await front.negotiated();
  await back.negotiated();
  front.g.open(22, '127.0.0.1');
  await until(() => front.opened.length === 1, 'the OPN on the front link');
  const accepted = front.opened.at(-1)!;
  splice(accepted, back.g.open(22, '127.0.0.1'));
  await until(() => back.opened.length === 1, 'the OPN on the back link');
  const far = back.opened.at(-1)!;
  const r = recorder();
  far.attach(r, () => undefined);
  // Count the batches the gateway writes to the agent's link from here on: a DAT send writes its
  // frames' headers and payloads while the link is corked, so they leave together.
  const link = back.gatewayLink;
  let batches = 0;
  let uncorkedWrites = 0;
  const cork = link.cork.bind(link);
  link.cork = () => { batches++; cork(); };
  const write = link.write.bind(link) as (c: Buffer) => boolean;
  link.write = ((c: Buffer) => { if (link.writableCorked === 0) uncorkedWrites++; return write(c); }) as typeof link.write;
  // Three DAT frames reach the gateway in one synchronous run, as from one read of an encrypted link.
  const parts = [randomBytes(8185), randomBytes(8185), randomBytes(100)];
  for (const p of parts) front.agentLink.emit('data', encodeDat(accepted.id, p));
  await until(() => r.bytes >= parts.reduce((n, b) => n + b.length, 0), 'the three frames at the far end');
  assert.deepEqual(Buffer.concat(r.chunks), Buffer.concat(parts));
  assert.equal(batches, 1, `one batch to the agent's link (got ${batches})`);
  assert.equal(uncorkedWrites, 0);
  front.g.destroy(); front.a.destroy(); back.g.destroy(); back.a.destroy();
});
