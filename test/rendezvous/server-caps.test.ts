import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { Peer, PeerTable } from '../../src/rendezvous/peer-table.ts';
import type { PeerRepo } from '../../src/rendezvous/peer-store.ts';
import { startRendezvous, WsPeer } from '../helpers/rustdesk.ts';

/**
 * The totals of docs/rendezvous.md §2.6, beside the per-address caps: max_connections across
 * every rendezvous port together, and max_peers in memory, which must keep taking new peers
 * while any offline peer can make room, however the online ones are ordered.
 */

test('max_connections holds across N, N-1 and N+2 together, from different addresses', async () => {
  const f = await startRendezvous({ max_connections: 5, max_connections_per_ip: 64 });
  const held: Socket[] = [];
  const open = async (port: number, from: string): Promise<Socket> => {
    const s = connect({ port, host: '127.0.0.1', localAddress: from });
    s.on('error', () => undefined);
    await once(s, 'connect');
    return s;
  };
  const closesAtOnce = (s: Socket): Promise<boolean> =>
    Promise.race([once(s, 'close').then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 2000))]);
  try {
    held.push(await open(f.port, '127.0.0.41'), await open(f.port, '127.0.0.41'));
    held.push(await open(f.natPort, '127.0.0.42'), await open(f.natPort, '127.0.0.42'));
    const ws = await WsPeer.connect(f.wsPort, {}, '127.0.0.43');
    for (const port of [f.port, f.natPort, f.wsPort]) {
      const sixth = await open(port, '127.0.0.44');
      assert.ok(await closesAtOnce(sixth), `a sixth connection (to ${port}) is closed`);
    }
    ws.close();
    for (const s of held.splice(0)) s.destroy();
  } finally {
    for (const s of held) s.destroy();
    await f.close();
  }
});

const nullRepo: PeerRepo = {
  get: () => null, upsert: () => undefined, delete: () => false, count: () => 0, list: () => [],
  blocked: () => [], block: () => undefined, unblock: () => false,
};

test('a full peer table still makes room when the first 64 peers it took in stay online', () => {
  let now = 1_000_000_000;
  const table = new PeerTable(nullRepo, 100, () => now);
  const add = (id: string): boolean => {
    const p = new Peer(id);
    p.lastRegTime = now;
    return table.insert(p);
  };
  for (let i = 0; i < 70; i++) assert.ok(add(`always-${i}`));
  for (let i = 0; i < 30; i++) assert.ok(add(`once-${i}`));
  // A minute later the first 70 are still registering; the last 30 have gone.
  now += 60_000;
  for (let i = 0; i < 70; i++) table.refresh(table.memory(`always-${i}`)!);
  for (let i = 0; i < 30; i++) assert.ok(add(`new-${i}`), `new peer ${i} takes an offline peer's place`);
  assert.equal(table.size, 100);
  assert.equal(add('one-too-many'), false, 'full of online peers: refused');
  for (let i = 0; i < 70; i++) assert.ok(table.memory(`always-${i}`), 'online peers are never evicted');
});

test('eviction that meets online peers first moves them back, so a later attempt finds the offline ones', () => {
  let now = 1_000_000_000;
  const table = new PeerTable(nullRepo, 100, () => now);
  const add = (id: string): boolean => {
    const p = new Peer(id);
    p.lastRegTime = now;
    return table.insert(p);
  };
  for (let i = 0; i < 100; i++) assert.ok(add(`p-${i}`));
  now += 60_000;
  // The first 70 stay online without refresh() reordering them (their times set directly).
  for (let i = 0; i < 70; i++) table.memory(`p-${i}`)!.lastRegTime = now;
  let admitted = 0;
  for (let i = 0; i < 40; i++) if (add(`late-${i}`)) admitted++;
  assert.equal(admitted, 30, 'every offline place is used, at most one attempt lost per 64 online peers met');
});
