import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { test } from 'node:test';
import { decodeAddrMangle } from '../../src/rendezvous/addr-mangle.ts';
import { encodeFrame } from '../../src/rendezvous/framing.ts';
import { NatType } from '../../src/rendezvous/gen/rendezvous_pb.ts';
import { encodeRendezvous, type RendezvousMessageInit } from '../../src/rendezvous/messages.ts';
import { registerPeer, startRendezvous, TcpPeer, UdpPeer } from '../helpers/rustdesk.ts';

/**
 * B's one-shot connections as the RustDesk client makes them (rendezvous_mediator.rs
 * handle_punch_hole / handle_intranet / create_relay): connect, send one message, drop the
 * socket, never read. The server's KeyExchange (secure TCP) is then unread in B's socket, so B's
 * close is a reset rather than a FIN. The message sent before the reset must still reach A.
 */
async function oneShot(port: number, from: string, m: RendezvousMessageInit): Promise<void> {
  const s = connect({ port, host: '127.0.0.1', localAddress: from });
  s.pause(); // never read: the KeyExchange stays in the kernel's buffer
  s.on('error', () => undefined);
  await once(s, 'connect');
  await new Promise((r) => setTimeout(r, 50)); // the KeyExchange has arrived
  s.write(encodeFrame(encodeRendezvous(m)));
  await new Promise((r) => setTimeout(r, 20));
  s.resetAndDestroy();
}

test('B sends PunchHoleSent / RelayResponse and resets without reading the KeyExchange: A still gets its answer', async () => {
  const f = await startRendezvous();
  const b = await UdpPeer.open('127.0.0.3');
  try {
    await registerPeer(b, f.port, 'peer-b-oneshot');
    const a = await TcpPeer.connect(f.port, { localAddress: '127.0.0.2' });
    a.send({ union: { case: 'punchHoleRequest', value: { id: 'peer-b-oneshot', natType: NatType.ASYMMETRIC, licenceKey: f.rdv.enforcedKey, version: '1.4.9' } } });
    const ph = await b.next();
    assert.equal(ph?.union.case, 'punchHole');
    if (ph.union.case !== 'punchHole') return;
    await oneShot(f.port, '127.0.0.3', { union: { case: 'punchHoleSent', value: { socketAddr: ph.union.value.socketAddr, id: 'peer-b-oneshot', natType: NatType.ASYMMETRIC, version: '1.4.9' } } });
    const r = await a.next();
    assert.equal(r?.union.case, 'punchHoleResponse');
    assert.equal(r.union.case === 'punchHoleResponse' && decodeAddrMangle(r.union.value.socketAddr).address, '127.0.0.3');
    // A then asks for a relay on a new connection; B answers RelayResponse the same way.
    const a2 = await TcpPeer.connect(f.port, { localAddress: '127.0.0.2' });
    a2.send({ union: { case: 'requestRelay', value: { id: 'peer-b-oneshot', uuid: 'uuid-oneshot', licenceKey: f.rdv.enforcedKey } } });
    const rr = await b.next();
    assert.equal(rr?.union.case, 'requestRelay');
    if (rr.union.case !== 'requestRelay') return;
    await oneShot(f.port, '127.0.0.3', { union: { case: 'relayResponse', value: { socketAddr: rr.union.value.socketAddr, version: '1.4.9' } } });
    const back = await a2.next();
    assert.equal(back?.union.case, 'relayResponse');
    a.close();
    a2.close();
  } finally {
    b.close();
    await f.close();
  }
});
