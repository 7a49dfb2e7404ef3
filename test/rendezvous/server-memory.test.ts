import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { encodeFrame } from '../../src/rendezvous/framing.ts';
import { registerPeer, startRendezvous, TcpPeer, UdpPeer, WsPeer } from '../helpers/rustdesk.ts';

/**
 * Memory over time: rounds of the same hostile and ordinary traffic (punch requests for a known
 * and an unknown id, half-sent frames, online queries, WebSocket NAT tests, from 50 addresses)
 * must leave nothing behind: after the first rounds the heap stops growing and every connection
 * slot is given back. Bounded: ROUNDS × PER_ROUND connections.
 */
const ROUNDS = Number(process.env.DK_MEM_ROUNDS ?? 8);
const PER_ROUND = 100;
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test('rounds of connections and requests leave the heap flat and every connection slot free', async () => {
  const f = await startRendezvous();
  const b = await UdpPeer.open('127.0.0.50');
  try {
    await registerPeer(b, f.port, 'mem-target');
    // What reaches B is dropped here, not queued in the test's inbox (which would grow).
    b.socket.removeAllListeners('message');
    b.socket.on('message', () => undefined);
    const heap: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (let c = 0; c < PER_ROUND; c++) {
        const from = `127.0.${1 + (c % 50)}.10`;
        const a = await TcpPeer.connect(f.port, { localAddress: from });
        a.send({ union: { case: 'punchHoleRequest', value: { id: 'mem-target', licenceKey: f.rdv.enforcedKey } } });
        a.send({ union: { case: 'punchHoleRequest', value: { id: 'nobody-here', licenceKey: f.rdv.enforcedKey } } });
        a.write(encodeFrame(Buffer.alloc(10)).subarray(0, 5));
        a.close();
        const n = await TcpPeer.connect(f.natPort, { localAddress: from });
        n.send({ union: { case: 'onlineRequest', value: { id: 'x', peers: ['mem-target', 'a', 'b'] } } });
        await n.next();
        n.close();
        if (c % 10 === 0) {
          const w = await WsPeer.connect(f.wsPort, {}, from);
          w.send({ union: { case: 'testNatRequest', value: {} } });
          await w.next();
          w.close();
        }
      }
      for (let i = 0; i < 50 && f.rdv.server.connections > 0; i++) await new Promise((r) => setTimeout(r, 20));
      gc();
      heap.push(process.memoryUsage().heapUsed);
    }
    const mib = heap.map((h) => (h / 1048576).toFixed(2));
    console.log(`# heap after each round of ${PER_ROUND} (MiB): ${mib.join(' ')}; rss ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB`);
    assert.equal(f.rdv.server.connections, 0, 'every connection slot given back');
    assert.equal(f.rdv.table.size, 1, 'nothing but the registered peer in the table');
    assert.ok(heap[ROUNDS - 1]! - heap[1]! < 2 * 1048576, `heap grew from ${mib[1]} to ${mib[ROUNDS - 1]} MiB`);
  } finally {
    b.close();
    await f.close();
  }
});
