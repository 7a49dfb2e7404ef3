import assert from 'node:assert/strict';
import { duplexPair } from 'node:stream';
import { test } from 'node:test';
import { Mux } from '../../src/mux/mux.ts';
import { ALL_FEATURES, Feature } from '../../src/protocol/index.ts';
import { recorder, until } from './helpers.ts';

/** Two muxes over an in-memory pair whose ends record useLargeRecords() calls, and the gateway link's writes. */
function rig(gwFeatures: number, agFeatures: number) {
  const [x, y] = duplexPair();
  const large = { gateway: 0, agent: 0 };
  Object.assign(x, { useLargeRecords: () => { large.gateway++; } });
  Object.assign(y, { useLargeRecords: () => { large.agent++; } });
  const writes: number[] = [];
  const write = x.write.bind(x) as (b: Buffer) => boolean;
  (x as { write: (b: Buffer) => boolean }).write = (b: Buffer): boolean => { writes.push(b.length); return write(b); };
  const opened: import('../../src/mux/session.ts').MuxSession[] = [];
  const g = new Mux(x, { role: 'gateway', keepaliveMs: 0, features: gwFeatures });
  const a = new Mux(y, { role: 'agent', keepaliveMs: 0, features: agFeatures, onOpen: (s) => opened.push(s) });
  return { g, a, large, writes, opened };
}

test('BIG offered by both (it is not offered by default): a 64 KiB write leaves as one frame, arrives exact, and the links may carry larger records', async (t) => {
  const { g, a, large, writes, opened } = rig(ALL_FEATURES | Feature.BIG, ALL_FEATURES | Feature.BIG);
  t.after(() => { g.destroy(); a.destroy(); });
  await until(() => g.peerHello !== null && a.peerHello !== null, 'HELLO both ways');
  assert.ok(g.features & Feature.BIG && a.features & Feature.BIG);
  assert.deepEqual(large, { gateway: 1, agent: 1 });
  const s = g.open(80, '10.0.0.1');
  await until(() => opened.length === 1, 'the OPN');
  const r = recorder();
  opened[0]!.attach(r, () => undefined);
  writes.length = 0;
  const data = Buffer.alloc(64 * 1024, 7);
  s.write(data);
  await until(() => r.bytes === data.length, '64 KiB at the agent');
  assert.deepEqual(writes.filter((n) => n !== 12 && n !== 24), [7, 65536], 'one 7-byte BIG header and the payload view');
  assert.deepEqual(Buffer.concat(r.chunks), data);
});

test('one side without BIG: seed-sized DAT frames, and the links keep their record size', async (t) => {
  const { g, a, large, writes, opened } = rig(ALL_FEATURES | Feature.BIG, ALL_FEATURES);
  t.after(() => { g.destroy(); a.destroy(); });
  await until(() => g.peerHello !== null && a.peerHello !== null, 'HELLO both ways');
  assert.equal(g.features & Feature.BIG, 0);
  assert.deepEqual(large, { gateway: 0, agent: 0 });
  const s = g.open(80, '10.0.0.1');
  await until(() => opened.length === 1, 'the OPN');
  const r = recorder();
  opened[0]!.attach(r, () => undefined);
  writes.length = 0;
  const data = Buffer.alloc(64 * 1024, 9);
  s.write(data);
  await until(() => r.bytes === data.length, '64 KiB at the agent');
  assert.equal(writes.filter((n) => n === 6).length, 9, 'nine 6-byte DAT headers for 64 KiB');
  assert.deepEqual(Buffer.concat(r.chunks), data);
});
