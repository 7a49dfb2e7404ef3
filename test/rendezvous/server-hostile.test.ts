import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { test } from 'node:test';
import { Prng } from '../helpers/prng.ts';
import { startRendezvous, TcpPeer, UdpPeer } from '../helpers/rustdesk.ts';

/**
 * Bad input leaves the rendezvous serving with bounded memory: seeded random datagrams and TCP
 * bytes, oversize frames and datagrams, a flood of RegisterPeer for unknown ids (which must not
 * grow the table), connections past the per-address cap. DK_FUZZ_SEED replays a run.
 */
const ROUNDS = 20_000;

test('random datagrams, junk TCP and oversize frames: the server still answers, the table and memory stay bounded', async () => {
  const rng = Prng.fromEnv();
  console.log(`# seed ${rng.seed} (DK_FUZZ_SEED=${rng.seed} repeats this run)`);
  const f = await startRendezvous({ max_frame: 1024 });
  const x = await UdpPeer.open('127.0.0.7');
  try {
    global.gc?.();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < ROUNDS; i++) {
      x.send(rng.bytes(rng.int(0, 1400)), f.port);
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    // RegisterPeer for 5,000 unknown ids: answered request_pk, nothing stored.
    for (let i = 0; i < 5000; i++) {
      x.send({ union: { case: 'registerPeer', value: { id: `flood-${i}` } } }, f.port);
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    // Junk and oversize frames on TCP N and N-1: closed.
    for (const port of [f.port, f.natPort]) {
      const junk = await TcpPeer.connect(port);
      junk.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
      assert.ok(await junk.closed(), `junk on ${port} closes`);
      const big = await TcpPeer.connect(port);
      big.write(Buffer.from([0x03, 0x00, 0x00, 0x10])); // 4-byte header: 1 MiB claimed, over max_frame
      assert.ok(await big.closed(), `an oversize header on ${port} closes at once`);
    }
    for (let i = 0; i < 200; i++) {
      const junk = await TcpPeer.connect(f.port);
      junk.write(rng.bytes(rng.int(1, 300)));
      junk.close();
    }
    // Still serving: a fresh peer registers.
    const ok = await UdpPeer.open('127.0.0.8');
    let answer: Buffer | null = null;
    for (let i = 0; i < 5 && !answer; i++) {
      ok.send({ union: { case: 'registerPeer', value: { id: 'still-here' } } }, f.port);
      answer = await ok.nextBytes(1000);
    }
    assert.equal(answer?.toString('hex'), '3a021001');
    // A datagram over max_datagram (2048) is dropped unread, even a valid-looking one.
    ok.send(Buffer.concat([Buffer.from('32fa1f0af71f', 'hex'), Buffer.alloc(4087, 0x61)]), f.port);
    assert.equal(await ok.nextBytes(500), null);
    ok.close();
    assert.equal(f.rdv.table.size, 0, 'RegisterPeer for unknown ids stores nothing');
    global.gc?.();
    const grown = process.memoryUsage().heapUsed - before;
    console.log(`# heap growth after ${ROUNDS} random datagrams, 5000 unknown registrations, 204 junk connections: ${(grown / 1048576).toFixed(1)} MiB`);
    assert.ok(grown < 64 * 1048576, `heap grew ${grown} bytes`);
    const dropped = await f.registry.getSingleMetric('dk_rendezvous_dropped_total')!.get();
    assert.ok(dropped.values.some((v) => v.labels.reason === 'undecodable' && v.value > 0), JSON.stringify(dropped.values));
    assert.ok(dropped.values.some((v) => v.labels.reason === 'datagram_too_large'));
  } finally {
    x.close();
    await f.close();
  }
});

test('connections past max_connections_per_ip are closed at once; others still get in; an operator block drops a source everywhere', async () => {
  const f = await startRendezvous({ max_connections_per_ip: 4 });
  const held: TcpPeer[] = [];
  try {
    for (let i = 0; i < 4; i++) held.push(await TcpPeer.connect(f.port, { localAddress: '127.0.0.9' }));
    const fifth = await TcpPeer.connect(f.port, { localAddress: '127.0.0.9' });
    assert.ok(await fifth.closed(), 'the fifth from one address is closed');
    const other = await TcpPeer.connect(f.natPort, { localAddress: '127.0.0.10' });
    other.send({ union: { case: 'testNatRequest', value: {} } });
    assert.equal((await other.next())?.union.case, 'testNatResponse');
    // Block 127.0.0.9: its open connections end, new ones and its datagrams are dropped; kept across a restart.
    f.rdv.block('127.0.0.9');
    for (const h of held) assert.ok(await h.closed());
    const s = connect({ port: f.port, host: '127.0.0.1', localAddress: '127.0.0.9' });
    s.on('error', () => undefined);
    await Promise.race([once(s, 'close'), new Promise((r) => setTimeout(r, 3000))]);
    assert.ok(s.destroyed, 'a blocked source is closed at accept');
    const u = await UdpPeer.open('127.0.0.9');
    u.send({ union: { case: 'registerPeer', value: { id: 'blocked-one' } } }, f.port);
    assert.equal(await u.nextBytes(300), null);
    u.close();
    assert.deepEqual(f.rdv.blocked(), ['127.0.0.9']);
    await f.close(true);
    const f2 = await startRendezvous({}, f.dir);
    try {
      assert.deepEqual(f2.rdv.blocked(), ['127.0.0.9'], 'a block holds across a restart');
      assert.equal(f2.rdv.unblock('127.0.0.9'), true);
    } finally {
      await f2.close();
    }
  } finally {
    for (const h of held) h.close();
  }
});

test('one connection may make at most 16 punch or relay requests; the 17th closes it', async () => {
  const f = await startRendezvous();
  const b = await UdpPeer.open('127.0.0.3');
  try {
    b.send({ union: { case: 'registerPk', value: { id: 'target-01', uuid: Buffer.from('u'), pk: Buffer.alloc(32, 1) } } }, f.port);
    await b.next();
    const a = await TcpPeer.connect(f.port, { localAddress: '127.0.0.2' });
    for (let i = 0; i < 17; i++) a.send({ union: { case: 'punchHoleRequest', value: { id: 'target-01', licenceKey: f.rdv.enforcedKey } } });
    assert.ok(await a.closed(), 'closed after the 17th');
    let got = 0;
    while (await b.nextBytes(300)) got++;
    assert.equal(got, 16, 'B got one PunchHole per allowed request, no more');
  } finally {
    b.close();
    await f.close();
  }
});
