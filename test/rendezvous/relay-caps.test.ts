import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dial, waitFor } from '../helpers/net.ts';
import { closed, readExactly, requestFrame, startRelay, tcpHalf } from '../helpers/relay.ts';

// Loopback is all of 127.0.0.0/8 on Linux: 127.0.0.2 is a second source address.

test('connections per IP and in total are capped; a refused one is closed, others keep working', async () => {
  const { relay, events } = await startRelay({ maxConnectionsPerIp: 3, maxConnections: 5 });
  try {
    const first = await Promise.all([dial(relay.tcpPort), dial(relay.tcpPort), dial(relay.wsPort!)]);
    await waitFor(() => relay.stats().connections === 3, 5_000, 'three open');
    const fourth = await dial(relay.tcpPort);
    await closed(fourth);
    assert.deepEqual(events.refused.map((r) => [r.ip, r.reason]), [['127.0.0.1', 'per_ip']]);
    // Another source is not affected, up to the total.
    const other = await Promise.all([dial(relay.tcpPort, '127.0.0.2'), dial(relay.tcpPort, '127.0.0.2')]);
    await waitFor(() => relay.stats().connections === 5, 5_000, 'five open');
    const sixth = await dial(relay.tcpPort, '127.0.0.3');
    await closed(sixth);
    assert.deepEqual(events.refused.at(-1), { ip: '127.0.0.3', reason: 'overload' });
    // Closing one frees its slot.
    first[0].destroy();
    await waitFor(() => relay.stats().connections === 4, 5_000, 'slot freed');
    const again = await tcpHalf(relay.tcpPort, requestFrame('x'));
    await waitFor(() => relay.stats().pending === 1, 5_000, 'accepted again');
    for (const s of [...first, ...other, again]) s.destroy();
  } finally {
    await relay.close();
  }
});

test('waiting halves per IP are capped; completing a pair from that IP still works', async () => {
  const { relay, events } = await startRelay({ maxPendingPerIp: 2, maxPending: 3 });
  try {
    const w1 = await tcpHalf(relay.tcpPort, requestFrame('p1'));
    const w2 = await tcpHalf(relay.tcpPort, requestFrame('p2'));
    await waitFor(() => relay.stats().pending === 2, 5_000, 'two waiting');
    const w3 = await tcpHalf(relay.tcpPort, requestFrame('p3'));
    await closed(w3);
    assert.deepEqual(events.refused.map((r) => r.reason), ['pending_per_ip']);
    const v1 = await tcpHalf(relay.tcpPort, requestFrame('q1'), Buffer.alloc(0), '127.0.0.2');
    await waitFor(() => relay.stats().pending === 3, 5_000, 'three waiting');
    const v2 = await tcpHalf(relay.tcpPort, requestFrame('q2'), Buffer.alloc(0), '127.0.0.2');
    await closed(v2);
    assert.equal(events.refused.at(-1)?.reason, 'pending_full');
    const partner = await tcpHalf(relay.tcpPort, requestFrame('p1'), Buffer.from('hi'));
    assert.equal((await readExactly(w1, 2)).toString(), 'hi');
    for (const s of [w1, w2, v1, partner]) s.destroy();
  } finally {
    await relay.close();
  }
});

test('a uuid whose pair is live is refused for a third connection', async () => {
  const { relay, events } = await startRelay();
  try {
    const a = await tcpHalf(relay.tcpPort, requestFrame('live'));
    await waitFor(() => relay.stats().pending === 1, 5_000, 'A waiting');
    const b = await tcpHalf(relay.tcpPort, requestFrame('live'));
    await waitFor(() => relay.stats().paired === 1, 5_000, 'paired');
    const intruder = await tcpHalf(relay.tcpPort, requestFrame('live'), Buffer.from('x'));
    await closed(intruder);
    assert.deepEqual(events.refused.map((r) => r.reason), ['uuid_in_use']);
    a.write('still here');
    assert.equal((await readExactly(b, 10)).toString(), 'still here');
    a.destroy();
    b.destroy();
  } finally {
    await relay.close();
  }
});

test('an IPv4 peer on a dual-stack socket (::ffff:a.b.c.d) is counted and reported under its IPv4 address', async () => {
  // A socket bound to the v4-mapped loopback address sees its IPv4 peers in the mapped form.
  const { relay, events } = await startRelay({ bind: '::ffff:127.0.0.1', maxConnectionsPerIp: 2 });
  try {
    const a = await tcpHalf(relay.tcpPort, requestFrame('v4'));
    await waitFor(() => relay.stats().pending === 1, 5_000, 'A waiting');
    const b = await tcpHalf(relay.tcpPort, requestFrame('v4'), Buffer.alloc(0), '127.0.0.1');
    await waitFor(() => events.paired.length === 1, 5_000, 'paired');
    assert.deepEqual([events.paired[0]!.ipA, events.paired[0]!.ipB], ['127.0.0.1', '127.0.0.1']);
    const third = await dial(relay.tcpPort);
    await closed(third);
    assert.deepEqual(events.refused, [{ ip: '127.0.0.1', reason: 'per_ip' }]);
    a.destroy();
    b.destroy();
  } finally {
    await relay.close();
  }
});
