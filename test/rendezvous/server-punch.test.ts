import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { ConfigError } from '../../src/config/errors.ts';
import { decodeAddrMangle, encodeAddrMangle } from '../../src/rendezvous/addr-mangle.ts';
import { NatType } from '../../src/rendezvous/gen/rendezvous_pb.ts';
import { openIdPk, parsePublicKeyFile } from '../../src/rendezvous/keys.ts';
import { registerPeer, startRendezvous, TcpPeer, UdpPeer, WsPeer } from '../helpers/rustdesk.ts';

/**
 * Punching and relay requests through a real rendezvous, both RustDesk roles played over loopback
 * (FACTS §5.2, §8): A is the controller on its TCP connection, B the controlled peer registered
 * over UDP. A and B use different loopback addresses, so they are "different networks" unless a
 * test puts them on the same one.
 */
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const pubKey = (dir: string): Buffer => parsePublicKeyFile(readFileSync(join(dir, 'id_ed25519.pub'), 'utf8'));

test('punch via PunchHole: B gets A\'s address over UDP, answers PunchHoleSent, A gets B\'s address and a signed pk that verifies with id_ed25519.pub', async () => {
  const f = await startRendezvous();
  const b = await UdpPeer.open('127.0.0.3');
  try {
    const bPk = await registerPeer(b, f.port, 'peer-b-001');
    const a = await TcpPeer.connect(f.port, { localAddress: '127.0.0.2' });
    a.send({ union: { case: 'punchHoleRequest', value: { id: 'peer-b-001', natType: NatType.ASYMMETRIC, licenceKey: f.rdv.enforcedKey, version: '1.4.9' } } });
    const ph = await b.next();
    assert.equal(ph?.union.case, 'punchHole');
    if (ph.union.case !== 'punchHole') return;
    assert.deepEqual(decodeAddrMangle(ph.union.value.socketAddr), { family: 'IPv4', address: '127.0.0.2', port: a.local.port });
    assert.equal(ph.union.value.natType, NatType.ASYMMETRIC);
    // B: a new TCP connection to the rendezvous, PunchHoleSent with the address as received.
    const bt = await TcpPeer.connect(f.port, { localAddress: '127.0.0.3' });
    const btPort = bt.local.port;
    bt.send({ union: { case: 'punchHoleSent', value: { socketAddr: ph.union.value.socketAddr, id: 'peer-b-001', relayServer: 'relay.example:21117', natType: NatType.ASYMMETRIC, version: '1.4.9' } } });
    assert.ok(await bt.closed(), 'B\'s one-shot connection is closed by the server');
    const r = await a.next();
    assert.equal(r?.union.case, 'punchHoleResponse');
    if (r.union.case !== 'punchHoleResponse') return;
    assert.deepEqual(decodeAddrMangle(r.union.value.socketAddr), { family: 'IPv4', address: '127.0.0.3', port: btPort });
    assert.equal(r.union.value.relayServer, 'relay.example:21117');
    assert.deepEqual(r.union.value.union, { case: 'natType', value: NatType.ASYMMETRIC });
    const idPk = openIdPk(r.union.value.pk, pubKey(f.dir));
    assert.equal(idPk.id, 'peer-b-001');
    assert.deepEqual(Buffer.from(idPk.pk), Buffer.from(bPk));
    assert.ok(f.audit.some((e) => e.event === 'rdv_punch' && e.target === 'peer-b-001' && e.clientIp === '127.0.0.2'), JSON.stringify(f.audit));
    a.close();
  } finally {
    b.close();
    await f.close();
  }
});

test('punch via FetchLocalAddr: A and B on the same address; B answers LocalAddr, A gets is_local and B\'s local address verbatim', async () => {
  const f = await startRendezvous();
  const b = await UdpPeer.open('127.0.0.4');
  try {
    await registerPeer(b, f.port, 'peer-b-002');
    const a = await TcpPeer.connect(f.port, { localAddress: '127.0.0.4' });
    a.send({ union: { case: 'punchHoleRequest', value: { id: 'peer-b-002', licenceKey: f.rdv.enforcedKey, version: '1.4.9' } } });
    const fla = await b.next();
    assert.equal(fla?.union.case, 'fetchLocalAddr');
    if (fla.union.case !== 'fetchLocalAddr') return;
    assert.equal(decodeAddrMangle(fla.union.value.socketAddr).port, a.local.port);
    const bt = await TcpPeer.connect(f.port, { localAddress: '127.0.0.4' });
    const local = encodeAddrMangle({ address: '192.168.7.9', port: 40001 });
    bt.send({ union: { case: 'localAddr', value: { socketAddr: fla.union.value.socketAddr, localAddr: local, id: 'peer-b-002', version: '1.4.9' } } });
    const r = await a.next();
    assert.equal(r?.union.case, 'punchHoleResponse');
    if (r.union.case !== 'punchHoleResponse') return;
    assert.deepEqual(Buffer.from(r.union.value.socketAddr), local);
    assert.deepEqual(r.union.value.union, { case: 'isLocal', value: true });
    assert.equal(openIdPk(r.union.value.pk, pubKey(f.dir)).id, 'peer-b-002');
    a.close();
    bt.close();
  } finally {
    b.close();
    await f.close();
  }
});

test('failures to A, byte-exact: ID_NOT_EXIST 5a00, LICENSE_MISMATCH 5a02 1803, OFFLINE 5a02 1802 (a stored peer not seen since a restart)', async () => {
  const f = await startRendezvous();
  const b = await UdpPeer.open('127.0.0.3');
  let f2: Awaited<ReturnType<typeof startRendezvous>> | null = null;
  try {
    await registerPeer(b, f.port, 'peer-b-003');
    const a = await TcpPeer.connect(f.port, { localAddress: '127.0.0.2' });
    // PunchHoleRequest{id: "nobody", licence_key: key} written by hand: 42 len 0a 06 "nobody" 1a 2c key
    const key = Buffer.from(f.rdv.enforcedKey);
    const inner = Buffer.concat([hex('0a 06'), Buffer.from('nobody'), hex('1a'), Buffer.from([key.length]), key]);
    a.send(Buffer.concat([hex('42'), Buffer.from([inner.length]), inner]));
    assert.equal(Buffer.from((await nextNonKx(a))!).toString('hex'), '5a00');
    a.send({ union: { case: 'punchHoleRequest', value: { id: 'peer-b-003', licenceKey: 'OeVuKk5nlHiXp+APNn0Y3pC1Iwpwn44JGqrQCsWqmBw=' } } });
    assert.equal(Buffer.from((await nextNonKx(a))!).toString('hex'), '5a021803');
    a.close();
    await f.close(true);
    f2 = await startRendezvous({}, f.dir);
    const a2 = await TcpPeer.connect(f2.port, { localAddress: '127.0.0.2' });
    a2.send({ union: { case: 'punchHoleRequest', value: { id: 'peer-b-003', licenceKey: f2.rdv.enforcedKey } } });
    assert.equal(Buffer.from((await nextNonKx(a2))!).toString('hex'), '5a021802');
    assert.equal(f2.rdv.enforcedKey, f.rdv.enforcedKey, 'the key files in the data dir are kept');
    a2.close();
  } finally {
    b.close();
    await (f2 ?? f).close();
  }
});

test('relay through the rendezvous: RequestRelay reaches B with A\'s address; B\'s RelayResponse reaches A without it; a B-initiated one carries the signed pk', async () => {
  const f = await startRendezvous();
  const b = await UdpPeer.open('127.0.0.3');
  try {
    const bPk = await registerPeer(b, f.port, 'peer-b-004');
    const a = await TcpPeer.connect(f.port, { localAddress: '127.0.0.2' });
    a.send({ union: { case: 'requestRelay', value: { id: 'peer-b-004', uuid: 'uuid-1', relayServer: 'r:21117', secure: true, licenceKey: f.rdv.enforcedKey } } });
    const rr = await b.next();
    assert.equal(rr?.union.case, 'requestRelay');
    if (rr.union.case !== 'requestRelay') return;
    assert.equal(rr.union.value.uuid, 'uuid-1');
    assert.equal(decodeAddrMangle(rr.union.value.socketAddr).port, a.local.port);
    const bt = await TcpPeer.connect(f.port, { localAddress: '127.0.0.3' });
    bt.send({ union: { case: 'relayResponse', value: { socketAddr: rr.union.value.socketAddr, uuid: 'uuid-1', relayServer: 'r:21117', version: '1.4.9' } } });
    const back = await a.next();
    assert.equal(back?.union.case, 'relayResponse');
    if (back.union.case !== 'relayResponse') return;
    assert.equal(back.union.value.uuid, 'uuid-1');
    assert.equal(back.union.value.socketAddr.length, 0);
    // B-initiated (create_relay(initiate=true)): id set → the server replaces it with the signed pk.
    const bt2 = await TcpPeer.connect(f.port, { localAddress: '127.0.0.3' });
    bt2.send({ union: { case: 'relayResponse', value: { socketAddr: encodeAddrMangle(a.local), uuid: 'uuid-2', relayServer: 'r:21117', union: { case: 'id', value: 'peer-b-004' }, version: '1.4.9' } } });
    const back2 = await a.next();
    assert.equal(back2?.union.case, 'relayResponse');
    if (back2.union.case !== 'relayResponse') return;
    assert.equal(back2.union.value.union.case, 'pk');
    const idPk = openIdPk(back2.union.value.union.value, pubKey(f.dir));
    assert.deepEqual([idPk.id, Buffer.from(idPk.pk)], ['peer-b-004', Buffer.from(bPk)]);
    a.close();
  } finally {
    b.close();
    await f.close();
  }
});

test('secure TCP: the server\'s KeyExchange verifies with id_ed25519.pub; after the client\'s answer every frame is encrypted both ways', async () => {
  const f = await startRendezvous();
  try {
    const a = await TcpPeer.connect(f.port);
    await a.secure(pubKey(f.dir));
    a.send({ union: { case: 'punchHoleRequest', value: { id: 'nobody', licenceKey: f.rdv.enforcedKey } } });
    // The raw frame on the wire is sealed (16-byte MAC + 2 bytes), and opens to 5a00.
    const raw = await a.frames.next(3000);
    assert.equal(raw?.length, 18);
    assert.equal(Buffer.from(a.channel!.open(raw)).toString('hex'), '5a00');
    // A second message, second nonce.
    a.send({ union: { case: 'punchHoleRequest', value: { id: 'nobody2', licenceKey: 'wrong' } } });
    assert.equal(Buffer.from((await a.nextPayload())!).toString('hex'), '5a021803');
    a.close();
    // A forged client box: the server closes.
    const c = await TcpPeer.connect(f.port);
    await c.frames.next(3000);
    c.send({ union: { case: 'keyExchange', value: { keys: [Buffer.alloc(32, 1), Buffer.alloc(48, 2)] } } });
    assert.ok(await c.closed());
  } finally {
    await f.close();
  }
});

test('WebSocket N+2: same messages, never "same network" (PunchHole even from B\'s address); X-Real-IP ignored from an untrusted peer', async () => {
  const f = await startRendezvous();
  const b = await UdpPeer.open('127.0.0.1');
  try {
    await registerPeer(b, f.port, 'peer-b-005');
    const a = await WsPeer.connect(f.wsPort, { 'X-Real-IP': '203.0.113.9' });
    a.send({ union: { case: 'punchHoleRequest', value: { id: 'peer-b-005', licenceKey: f.rdv.enforcedKey, version: '1' } } });
    const ph = await b.next();
    assert.equal(ph?.union.case, 'punchHole');
    if (ph.union.case !== 'punchHole') return;
    assert.equal(decodeAddrMangle(ph.union.value.socketAddr).address, '127.0.0.1', 'the header of an untrusted peer is not believed');
    const bt = await TcpPeer.connect(f.port);
    bt.send({ union: { case: 'punchHoleSent', value: { socketAddr: ph.union.value.socketAddr, id: 'peer-b-005', version: '1' } } });
    const r = await a.next();
    assert.equal(r?.union.case, 'punchHoleResponse');
    // Unknown id over WS: the empty PunchHoleResponse.
    a.send({ union: { case: 'punchHoleRequest', value: { id: 'nobody', licenceKey: f.rdv.enforcedKey } } });
    const r2 = await a.next();
    assert.deepEqual(r2?.union.case === 'punchHoleResponse' && r2.union.value.failure, 0);
    a.close();
  } finally {
    b.close();
    await f.close();
  }
});

test('PunchHoleRequest, PunchHoleSent and LocalAddr over UDP get no answer and nothing is sent to anyone (no reflection)', async () => {
  const f = await startRendezvous();
  const b = await UdpPeer.open('127.0.0.3');
  const x = await UdpPeer.open('127.0.0.6');
  try {
    await registerPeer(b, f.port, 'peer-b-006');
    x.send({ union: { case: 'punchHoleRequest', value: { id: 'peer-b-006', licenceKey: f.rdv.enforcedKey } } }, f.port);
    x.send({ union: { case: 'punchHoleSent', value: { socketAddr: encodeAddrMangle(b.address), id: 'peer-b-006' } } }, f.port);
    x.send({ union: { case: 'localAddr', value: { socketAddr: encodeAddrMangle(b.address), id: 'peer-b-006' } } }, f.port);
    assert.equal(await x.nextBytes(300), null);
    assert.equal(await b.nextBytes(300), null);
  } finally {
    b.close();
    x.close();
    await f.close();
  }
});

async function nextNonKx(a: TcpPeer): Promise<Uint8Array | null> {
  for (;;) {
    const p = await a.nextPayload();
    if (p === null || p[0] !== 0xca) return p; // 0xca 0x01 = field 25 (key_exchange)
  }
}

test('the relay beside the rendezvous: A and B pair by uuid with the enforced Key, bytes flow both ways, the pair is audited and counted; a wrong Key is closed', async () => {
  const f = await startRendezvous();
  try {
    const relayPort = f.rdv.relayPort();
    const a = await TcpPeer.connect(relayPort, { localAddress: '127.0.0.2' });
    a.send({ union: { case: 'requestRelay', value: { id: 'peer-b-007', uuid: 'relay-uuid-1', licenceKey: f.rdv.enforcedKey } } });
    a.write(Buffer.from('hello from A before B came'));
    const b = await TcpPeer.connect(relayPort, { localAddress: '127.0.0.3' });
    b.send({ union: { case: 'requestRelay', value: { uuid: 'relay-uuid-1', licenceKey: f.rdv.enforcedKey } } });
    const got = await new Promise<string>((resolve) => {
      let acc = '';
      b.socket.removeAllListeners('data');
      b.socket.on('data', (c: Buffer) => { acc += c.toString(); if (acc.length >= 26) resolve(acc); });
    });
    assert.equal(got, 'hello from A before B came');
    const back = new Promise<string>((resolve) => {
      a.socket.removeAllListeners('data');
      a.socket.on('data', (c: Buffer) => resolve(c.toString()));
    });
    b.write(Buffer.from('and back'));
    assert.equal(await back, 'and back');
    assert.ok(f.audit.some((e) => e.event === 'rdv_relay_pair' && e.target === 'peer-b-007' && e.clientIp === '127.0.0.2'), JSON.stringify(f.audit));
    const pairs = await f.registry.getSingleMetric('dk_relay_pairs_total')!.get();
    assert.equal(pairs.values[0]?.value, 1);
    a.close();
    b.close();
    // A Key other than the enforced one: closed without a pair.
    const c = await TcpPeer.connect(relayPort);
    c.send({ union: { case: 'requestRelay', value: { uuid: 'relay-uuid-2', licenceKey: 'not-the-key' } } });
    assert.ok(await c.closed());
    const refused = await f.registry.getSingleMetric('dk_relay_refused_total')!.get();
    assert.ok(refused.values.some((v) => v.value >= 1), JSON.stringify(refused.values));
  } finally {
    await f.close();
  }
});

test('a relay port in use is a ConfigError naming rendezvous.relay_port (gateway/listen.ts, as every listener)', async () => {
  const busy = createServer();
  busy.listen(0, '127.0.0.1');
  await once(busy, 'listening');
  const port = (busy.address() as AddressInfo).port;
  try {
    await assert.rejects(startRendezvous({ relay_port: port }), (e: unknown) => e instanceof ConfigError && /rendezvous\.relay_port/.test(e.message));
  } finally {
    busy.close();
  }
});
