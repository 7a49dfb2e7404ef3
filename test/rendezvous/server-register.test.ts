import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeFrame } from '../../src/rendezvous/framing.ts';
import { decodeRendezvous } from '../../src/rendezvous/messages.ts';
import { registerPeer, startRendezvous, TcpPeer, UdpPeer } from '../helpers/rustdesk.ts';

/**
 * Registration, the NAT test and the online query against a real rendezvous over loopback, with
 * messages from the project's codec and hand-written bytes from the .proto field numbers (so a
 * codec bug cannot cancel itself out). FACTS §5.1, §5.3.
 */
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const ascii = (s: string): string => Buffer.from(s).toString('hex');

/** RendezvousMessage{register_pk (15): RegisterPk{id (1), uuid (2), pk (3): 32 bytes of `fill`}}, by hand. */
function registerPkBytes(id: string, uuid: string, fill: number): Buffer {
  const inner = hex(`0a ${(id.length).toString(16).padStart(2, '0')} ${ascii(id)} 12 ${(uuid.length).toString(16).padStart(2, '0')} ${ascii(uuid)} 1a 20 ${fill.toString(16).padStart(2, '0').repeat(32)}`);
  return Buffer.concat([hex('7a'), Buffer.from([inner.length]), inner]);
}

test('UDP registration: unknown id → request_pk; RegisterPk OK; then RegisterPeer refreshes without request_pk (byte vectors)', async () => {
  const f = await startRendezvous();
  const b = await UdpPeer.open();
  try {
    // RegisterPeer{id: "123456789"} → RegisterPeerResponse{request_pk: true} = 3a 02 10 01
    b.send(hex('32 0b 0a 09 313233343536373839'), f.port);
    assert.equal((await b.nextBytes())?.toString('hex'), '3a021001');
    // RegisterPk → RegisterPkResponse{result: OK} = 82 01 00 (OK is 0: an empty message, always written as the oneof member)
    b.send(registerPkBytes('123456789', 'U1', 7), f.port);
    assert.equal((await b.nextBytes())?.toString('hex'), '820100');
    // RegisterPeer again → RegisterPeerResponse{} = 3a 00
    b.send(hex('32 0b 0a 09 313233343536373839'), f.port);
    assert.equal((await b.nextBytes())?.toString('hex'), '3a00');
    const p = f.rdv.table.memory('123456789')!;
    assert.equal(p.port, b.address.port, 'the peer is reached at the address it registered from');
    assert.ok(f.rdv.table.isOnline(p));
    // Stored in SQLite with its key.
    const stored = f.rdv.table.repo.get('123456789')!;
    assert.deepEqual(Buffer.from(stored.pk), Buffer.alloc(32, 7));
    assert.equal(Buffer.from(stored.uuid).toString(), 'U1');
  } finally {
    b.close();
    await f.close();
  }
});

test('RegisterPk: another uuid for a registered id, and an id under 6 bytes, are UUID_MISMATCH (82 01 02 08 02)', async () => {
  const f = await startRendezvous();
  const b = await UdpPeer.open();
  try {
    b.send(registerPkBytes('abcdef', 'U1', 1), f.port);
    assert.equal((await b.nextBytes())?.toString('hex'), '820100');
    b.send(registerPkBytes('abcdef', 'U2', 1), f.port);
    assert.equal((await b.nextBytes())?.toString('hex'), '8201020802');
    b.send(registerPkBytes('abcde', 'U1', 1), f.port);
    assert.equal((await b.nextBytes())?.toString('hex'), '8201020802');
    // Empty uuid or pk: no answer at all.
    b.send({ union: { case: 'registerPk', value: { id: 'abcdefg', uuid: new Uint8Array(0), pk: Buffer.alloc(32) } } }, f.port);
    assert.equal(await b.nextBytes(300), null);
  } finally {
    b.close();
    await f.close();
  }
});

test('RegisterPk: the 4th for one id within 6 s, and the 33rd from one address within a minute, are TOO_FREQUENT (82 01 02 08 04)', async () => {
  const f = await startRendezvous();
  const b = await UdpPeer.open();
  try {
    const answers: string[] = [];
    for (let i = 0; i < 4; i++) {
      b.send(registerPkBytes('samepeer', 'U1', 1), f.port);
      answers.push((await b.nextBytes())!.toString('hex'));
    }
    assert.deepEqual(answers, ['820100', '820100', '820100', '8201020804']);
    // The IP blocker: the first call from an address creates its entry, 31 more pass, then refused.
    const c = await UdpPeer.open('127.0.0.5');
    const results: string[] = [];
    for (let i = 0; i < 34; i++) {
      c.send(registerPkBytes(`peer-${String(i).padStart(3, '0')}`, `U${i}`, 2), f.port);
      results.push((await c.nextBytes())!.toString('hex'));
    }
    c.close();
    assert.equal(results.filter((r) => r === '820100').length, 32, results.join(' '));
    assert.deepEqual(results.slice(32), ['8201020804', '8201020804']);
  } finally {
    b.close();
    await f.close();
  }
});

test('NAT test on N and N−1 from the same local port reports that port; N answers a lower serial with ConfigUpdate, N−1 never', async () => {
  const f = await startRendezvous({ serial: 5 });
  try {
    const a = await TcpPeer.connect(f.port);
    const localPort = a.local.port;
    a.send(hex('a2 01 00')); // TestNatRequest{serial: 0}
    const r1 = await a.next();
    assert.equal(r1?.union.case, 'testNatResponse');
    assert.equal(r1.union.case === 'testNatResponse' && r1.union.value.port, localPort);
    assert.equal(r1.union.case === 'testNatResponse' && r1.union.value.cu?.serial, 5);
    assert.ok(await a.closed(), 'the server closes after answering');
    const b = await TcpPeer.connect(f.natPort, { localPort });
    b.send(hex('a2 01 00'));
    const raw = await b.nextPayload();
    // TestNatResponse{port} = aa 01 <len> 08 <varint port>, no cu
    const varint = (n: number): string => {
      const out: number[] = [];
      for (; n >= 0x80; n >>>= 7) out.push((n & 0x7f) | 0x80);
      out.push(n);
      return Buffer.from(out).toString('hex');
    };
    const inner = `08${varint(localPort)}`;
    assert.equal(Buffer.from(raw!).toString('hex'), `aa01${(inner.length / 2).toString(16).padStart(2, '0')}${inner}`);
    assert.ok(await b.closed());
  } finally {
    await f.close();
  }
});

test('online query on N−1: a ceil(n/8)-byte bitmap, MSB first, set for online peers only', async () => {
  const f = await startRendezvous();
  const b1 = await UdpPeer.open();
  const b2 = await UdpPeer.open();
  try {
    await registerPeer(b1, f.port, 'online-1');
    await registerPeer(b2, f.port, 'online-2');
    const ids = ['online-1', 'nobody-1', 'nobody-2', 'nobody-3', 'nobody-4', 'nobody-5', 'nobody-6', 'nobody-7', 'online-2'];
    const q = await TcpPeer.connect(f.natPort);
    q.send({ union: { case: 'onlineRequest', value: { id: 'asker01', peers: ids } } });
    const r = await q.next();
    assert.equal(r?.union.case, 'onlineResponse');
    assert.deepEqual([...(r.union.case === 'onlineResponse' ? r.union.value.states : [])], [0b1000_0000, 0b1000_0000]);
    // Zero peers: an empty bitmap, and the connection ends.
    const q2 = await TcpPeer.connect(f.natPort);
    q2.send({ union: { case: 'onlineRequest', value: { id: 'asker01', peers: [] } } });
    const r2 = await q2.nextPayload();
    assert.equal(Buffer.from(r2!).toString('hex'), 'c20100');
  } finally {
    b1.close();
    b2.close();
    await f.close();
  }
});

test('TCP registration (beyond open hbbs): RegisterPk over TCP is OK with keep_alive; the connection is the peer\'s route and heartbeats keep it', async () => {
  const f = await startRendezvous({ keep_alive: 1 });
  try {
    const b = await TcpPeer.connect(f.port);
    b.send({ union: { case: 'registerPk', value: { id: 'tcp-peer-1', uuid: Buffer.from('u'), pk: Buffer.alloc(32, 3) } } });
    const r = await b.next();
    assert.equal(r?.union.case, 'registerPkResponse');
    assert.equal(r.union.case === 'registerPkResponse' && r.union.value.result, 0);
    assert.equal(r.union.case === 'registerPkResponse' && r.union.value.keepAlive, 1);
    // The server sends empty frames as heartbeats; the client answers each with an empty frame.
    const hb = await b.nextPayload(3000);
    assert.equal(hb?.length, 0);
    b.write(encodeFrame(new Uint8Array(0)));
    // A requester's punch reaches the peer over this connection, not UDP.
    const a = await TcpPeer.connect(f.port, { localAddress: '127.0.0.2' });
    a.send({ union: { case: 'punchHoleRequest', value: { id: 'tcp-peer-1', licenceKey: f.rdv.enforcedKey } } });
    let m = await b.next();
    while (m && m.union.case === undefined) m = await b.next();
    assert.equal(m?.union.case, 'punchHole');
    a.close();
    b.close();
  } finally {
    await f.close();
  }
});

test('decodeRendezvous of the hand vectors above agrees with the codec', () => {
  const m = decodeRendezvous(registerPkBytes('abcdef', 'U1', 9));
  assert.equal(m.union.case, 'registerPk');
  assert.equal(m.union.case === 'registerPk' && m.union.value.id, 'abcdef');
});

test('max_stored_peers: a new id beyond is SERVER_ERROR (82 01 02 08 07); known ids still register; a delete makes room', async () => {
  const f = await startRendezvous({ max_stored_peers: 2 });
  const b = await UdpPeer.open('127.0.0.11');
  try {
    for (const id of ['stored-1', 'stored-2']) {
      b.send(registerPkBytes(id, 'U', 3), f.port);
      assert.equal((await b.nextBytes())?.toString('hex'), '820100');
    }
    b.send(registerPkBytes('stored-3', 'U', 3), f.port);
    assert.equal((await b.nextBytes())?.toString('hex'), '8201020807');
    b.send(registerPkBytes('stored-1', 'U', 3), f.port);
    assert.equal((await b.nextBytes())?.toString('hex'), '820100');
    assert.equal(f.rdv.deletePeer('stored-2'), true);
    b.send(registerPkBytes('stored-3', 'U', 3), f.port);
    assert.equal((await b.nextBytes())?.toString('hex'), '820100');
  } finally {
    b.close();
    await f.close();
  }
});
