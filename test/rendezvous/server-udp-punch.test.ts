import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeAddrMangle, encodeAddrMangle } from '../../src/rendezvous/addr-mangle.ts';
import { NatType } from '../../src/rendezvous/gen/rendezvous_pb.ts';
import { openIdPk, parsePublicKeyFile } from '../../src/rendezvous/keys.ts';
import { decodeRendezvous } from '../../src/rendezvous/messages.ts';
import { registerPeer, startRendezvous, TcpPeer, UdpPeer } from '../helpers/rustdesk.ts';

/**
 * The UDP hole-punching fields of stock RustDesk clients (docs/rendezvous.md "UDP hole punching
 * for stock clients (issue 20)"), both roles over real sockets: A asks over TCP with udp_port,
 * B (registered over UDP) gets PunchHole with udp_port and answers PunchHoleSent over UDP from a
 * new socket; A gets PunchHoleResponse{is_udp} with B's UDP address. Nothing goes back by UDP.
 */
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const pubKey = (dir: string): Buffer => parsePublicKeyFile(readFileSync(join(dir, 'id_ed25519.pub'), 'utf8'));
const V6 = encodeAddrMangle({ address: '2001:db8::7', port: 40404 });

test('UDP punch with the codec: udp_port, force_relay and a global socket_addr_v6 reach B; B\'s UDP PunchHoleSent reaches A as is_udp over TCP, once, and nothing is sent back by UDP', async () => {
  const f = await startRendezvous();
  const b = await UdpPeer.open('127.0.0.3');
  const bPunch = await UdpPeer.open('127.0.0.3');
  try {
    const bPk = await registerPeer(b, f.port, 'peer-u-001');
    const a = await TcpPeer.connect(f.port, { localAddress: '127.0.0.2' });
    a.send({ union: { case: 'punchHoleRequest', value: { id: 'peer-u-001', natType: NatType.ASYMMETRIC, licenceKey: f.rdv.enforcedKey, version: '1.4.9', udpPort: 40000, socketAddrV6: V6 } } });
    const ph = await b.next();
    assert.equal(ph?.union.case, 'punchHole');
    if (ph.union.case !== 'punchHole') return;
    assert.equal(ph.union.value.udpPort, 40000);
    assert.equal(ph.union.value.forceRelay, false);
    assert.deepEqual(decodeAddrMangle(ph.union.value.socketAddrV6), { family: 'IPv6', address: '2001:db8::7', port: 40404 });
    assert.deepEqual(decodeAddrMangle(ph.union.value.socketAddr), { family: 'IPv4', address: '127.0.0.2', port: a.local.port });
    // B: a new UDP socket, PunchHoleSent three times (rendezvous_mediator.rs punch_udp_hole).
    const sent = { union: { case: 'punchHoleSent', value: { socketAddr: ph.union.value.socketAddr, id: 'peer-u-001', relayServer: 'relay.example:21117', natType: NatType.ASYMMETRIC, version: '1.4.9', socketAddrV6: V6 } } } as const;
    for (let i = 0; i < 3; i++) bPunch.send(sent, f.port);
    const r = await a.next();
    assert.equal(r?.union.case, 'punchHoleResponse');
    if (r.union.case !== 'punchHoleResponse') return;
    assert.equal(r.union.value.isUdp, true);
    assert.deepEqual(decodeAddrMangle(r.union.value.socketAddr), { family: 'IPv4', address: '127.0.0.3', port: bPunch.address.port });
    assert.deepEqual(r.union.value.union, { case: 'natType', value: NatType.ASYMMETRIC });
    assert.equal(r.union.value.relayServer, 'relay.example:21117');
    assert.deepEqual(decodeAddrMangle(r.union.value.socketAddrV6), { family: 'IPv6', address: '2001:db8::7', port: 40404 });
    const idPk = openIdPk(r.union.value.pk, pubKey(f.dir));
    assert.equal(idPk.id, 'peer-u-001');
    assert.deepEqual(Buffer.from(idPk.pk), Buffer.from(bPk));
    assert.equal(await a.next(500), null, 'the two repeated datagrams are not answered again');
    assert.equal(await bPunch.nextBytes(300), null, 'no UDP answer to PunchHoleSent');
    assert.ok(f.audit.some((e) => e.event === 'rdv_punch' && e.target === 'peer-u-001' && e.detail.includes('udp')), JSON.stringify(f.audit));
    const punches = await f.registry.getSingleMetricAsString('dk_rendezvous_punch_total');
    assert.match(punches, /outcome="forwarded_udp"} 1/);
    assert.match(punches, /outcome="answered_udp"} 1/);
    // force_relay is passed on as the client sent it.
    a.send({ union: { case: 'punchHoleRequest', value: { id: 'peer-u-001', natType: NatType.SYMMETRIC, licenceKey: f.rdv.enforcedKey, version: '1.4.9', forceRelay: true } } });
    const ph2 = await b.next();
    assert.equal(ph2?.union.case === 'punchHole' && ph2.union.value.forceRelay, true);
    a.close();
  } finally {
    b.close();
    bPunch.close();
    await f.close();
  }
});

test('UDP punch with hand-written bytes: udp_port 40000 on the wire to B, is_udp (field 9) on the wire to A', async () => {
  const f = await startRendezvous();
  const b = await UdpPeer.open('127.0.0.5');
  const bPunch = await UdpPeer.open('127.0.0.5');
  try {
    await registerPeer(b, f.port, 'peer-u-002');
    const a = await TcpPeer.connect(f.port, { localAddress: '127.0.0.6' });
    const key = Buffer.from(f.rdv.enforcedKey);
    // PunchHoleRequest{id, nat_type 1, licence_key, version "1.4.9", udp_port 40000 (field 7: 38 c0 b8 02)}
    const body = Buffer.concat([hex('0a0a'), Buffer.from('peer-u-002'), hex('1001'), Buffer.from([0x1a, key.length]), key, hex('3205'), Buffer.from('1.4.9'), hex('38c0b802')]);
    a.send(Buffer.concat([Buffer.from([0x42, body.length]), body]));
    const raw = await b.nextBytes();
    assert.ok(raw);
    assert.equal(raw[0], 0x4a, 'RendezvousMessage field 9: PunchHole');
    assert.ok(raw.includes(hex('20c0b802')), `PunchHole.udp_port (field 4) = 40000 in ${raw.toString('hex')}`);
    const ph = decodeRendezvous(raw);
    if (ph.union.case !== 'punchHole') return assert.fail('not a PunchHole');
    // PunchHoleSent{socket_addr as received, id, nat_type 1, version} by hand: field 10 = 52.
    const sa = Buffer.from(ph.union.value.socketAddr);
    const phs = Buffer.concat([Buffer.from([0x0a, sa.length]), sa, hex('120a'), Buffer.from('peer-u-002'), hex('2001'), hex('2a05'), Buffer.from('1.4.9')]);
    bPunch.socket.send(Buffer.concat([Buffer.from([0x52, phs.length]), phs]), f.port, '127.0.0.1');
    // The server offers secure TCP first (KeyExchange, field 25: ca 01); a client skips it.
    let resp = await a.nextPayload();
    while (resp && resp[0] === 0xca) resp = await a.nextPayload();
    assert.ok(resp);
    const bytes = Buffer.from(resp);
    assert.equal(bytes[0], 0x5a, 'RendezvousMessage field 11: PunchHoleResponse');
    assert.ok(bytes.includes(hex('4801')), `is_udp = true (48 01) in ${bytes.toString('hex')}`);
    const r = decodeRendezvous(bytes);
    if (r.union.case !== 'punchHoleResponse') return assert.fail('not a PunchHoleResponse');
    assert.deepEqual(decodeAddrMangle(r.union.value.socketAddr), { family: 'IPv4', address: '127.0.0.5', port: bPunch.address.port });
    a.close();
  } finally {
    b.close();
    bPunch.close();
    await f.close();
  }
});

test('UDP PunchHoleSent is refused from another IP, without a UDP punch pending, and never answered by UDP; the genuine one still works', async () => {
  const f = await startRendezvous();
  const b = await UdpPeer.open('127.0.0.7');
  const spoof = await UdpPeer.open('127.0.0.9');
  const bPunch = await UdpPeer.open('127.0.0.7');
  try {
    await registerPeer(b, f.port, 'peer-u-003');
    // A TCP punch (no udp_port): a UDP PunchHoleSent for it is not taken.
    const a0 = await TcpPeer.connect(f.port, { localAddress: '127.0.0.8' });
    a0.send({ union: { case: 'punchHoleRequest', value: { id: 'peer-u-003', natType: NatType.ASYMMETRIC, licenceKey: f.rdv.enforcedKey, version: '1.4.9' } } });
    const ph0 = await b.next();
    if (ph0?.union.case !== 'punchHole') return assert.fail('no PunchHole');
    assert.equal(ph0.union.value.udpPort, 0);
    bPunch.send({ union: { case: 'punchHoleSent', value: { socketAddr: ph0.union.value.socketAddr, id: 'peer-u-003', natType: NatType.ASYMMETRIC } } }, f.port);
    assert.equal(await a0.next(500), null, 'no answer to a UDP PunchHoleSent nobody asked for');
    a0.close();
    // A UDP punch: a PunchHoleSent from another IP (a spoofer) is ignored, B's own is taken.
    const a = await TcpPeer.connect(f.port, { localAddress: '127.0.0.8' });
    a.send({ union: { case: 'punchHoleRequest', value: { id: 'peer-u-003', natType: NatType.ASYMMETRIC, licenceKey: f.rdv.enforcedKey, version: '1.4.9', udpPort: 5555 } } });
    const ph = await b.next();
    if (ph?.union.case !== 'punchHole') return assert.fail('no PunchHole');
    assert.equal(ph.union.value.udpPort, 5555);
    const sent = { union: { case: 'punchHoleSent', value: { socketAddr: ph.union.value.socketAddr, id: 'peer-u-003', natType: NatType.ASYMMETRIC } } } as const;
    spoof.send(sent, f.port);
    spoof.send({ union: { case: 'punchHoleSent', value: { ...sent.union.value, id: 'other-id-9' } } }, f.port);
    assert.equal(await a.next(500), null, 'a PunchHoleSent from an IP that is not B\'s is ignored');
    assert.equal(await spoof.nextBytes(200), null);
    bPunch.send(sent, f.port);
    const r = await a.next();
    assert.equal(r?.union.case === 'punchHoleResponse' && r.union.value.isUdp, true);
    if (r?.union.case !== 'punchHoleResponse') return;
    assert.equal(decodeAddrMangle(r.union.value.socketAddr).port, bPunch.address.port);
    a.close();
  } finally {
    b.close();
    spoof.close();
    bPunch.close();
    await f.close();
  }
});

test('socket_addr_v6 that is not global unicast is not passed on; TCP PunchHoleSent and LocalAddr carry B\'s socket_addr_v6 to A; UDP TestNatRequest gets no answer', async () => {
  const f = await startRendezvous();
  const b = await UdpPeer.open('127.0.0.10');
  try {
    await registerPeer(b, f.port, 'peer-u-004');
    const a = await TcpPeer.connect(f.port, { localAddress: '127.0.0.11' });
    a.send({ union: { case: 'punchHoleRequest', value: { id: 'peer-u-004', natType: NatType.ASYMMETRIC, licenceKey: f.rdv.enforcedKey, version: '1.4.9', socketAddrV6: encodeAddrMangle({ address: '::1', port: 9 }) } } });
    const ph = await b.next();
    if (ph?.union.case !== 'punchHole') return assert.fail('no PunchHole');
    assert.equal(ph.union.value.socketAddrV6.length, 0, 'loopback v6 target dropped');
    const bt = await TcpPeer.connect(f.port, { localAddress: '127.0.0.10' });
    bt.send({ union: { case: 'punchHoleSent', value: { socketAddr: ph.union.value.socketAddr, id: 'peer-u-004', natType: NatType.ASYMMETRIC, version: '1.4.9', socketAddrV6: V6 } } });
    const r = await a.next();
    if (r?.union.case !== 'punchHoleResponse') return assert.fail('no PunchHoleResponse');
    assert.equal(r.union.value.isUdp, false);
    assert.deepEqual(decodeAddrMangle(r.union.value.socketAddrV6), { family: 'IPv6', address: '2001:db8::7', port: 40404 });
    a.close();
    // Same network: FetchLocalAddr carries A's v6 socket, LocalAddr's comes back.
    const al = await TcpPeer.connect(f.port, { localAddress: '127.0.0.10' });
    al.send({ union: { case: 'punchHoleRequest', value: { id: 'peer-u-004', licenceKey: f.rdv.enforcedKey, version: '1.4.9', socketAddrV6: V6 } } });
    const fla = await b.next();
    if (fla?.union.case !== 'fetchLocalAddr') return assert.fail('no FetchLocalAddr');
    assert.deepEqual(Buffer.from(fla.union.value.socketAddrV6), V6);
    const bl = await TcpPeer.connect(f.port, { localAddress: '127.0.0.10' });
    bl.send({ union: { case: 'localAddr', value: { socketAddr: fla.union.value.socketAddr, localAddr: encodeAddrMangle({ address: '192.168.1.5', port: 4000 }), id: 'peer-u-004', version: '1.4.9', socketAddrV6: V6 } } });
    const rl = await al.next();
    if (rl?.union.case !== 'punchHoleResponse') return assert.fail('no PunchHoleResponse');
    assert.deepEqual(Buffer.from(rl.union.value.socketAddrV6), V6);
    al.close();
    // The client's UDP NAT test: 3 bytes (a2 01 00); any TestNatResponse is larger → no answer.
    b.socket.send(hex('a20100'), f.port, '127.0.0.1');
    assert.equal(await b.nextBytes(400), null);
  } finally {
    b.close();
    await f.close();
  }
});
