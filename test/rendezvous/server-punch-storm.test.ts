import assert from 'node:assert/strict';
import { test } from 'node:test';
import { registerPeer, startRendezvous, TcpPeer, UdpPeer } from '../helpers/rustdesk.ts';

/**
 * A punch storm: one source opens connection after connection and sends PunchHoleRequest and
 * RequestRelay for a registered peer. Each forwarded one makes a RustDesk client open a TCP
 * connection to the server and dial the requester, so the server must not turn one hostile
 * source into thousands of those a second (hbbs forwards every one). Another source still gets
 * through.
 */
const CONNS = 100;
const PER_CONN = 16;

test('a punch storm from one address reaches the target only at the forward rate; another address still gets through', async () => {
  // The defaults: 20 forwards a second per source address, bursts of 40.
  const f = await startRendezvous();
  const b = await UdpPeer.open('127.0.0.50');
  try {
    await registerPeer(b, f.port, 'victim-1');
    let got = 0;
    b.socket.on('message', () => got++);
    const t0 = Date.now();
    for (let c = 0; c < CONNS; c++) {
      const a = await TcpPeer.connect(f.port, { localAddress: '127.0.0.60' });
      for (let i = 0; i < PER_CONN; i++) {
        a.send(i % 2 === 0
          ? { union: { case: 'punchHoleRequest', value: { id: 'victim-1', licenceKey: f.rdv.enforcedKey } } }
          : { union: { case: 'requestRelay', value: { id: 'victim-1', uuid: `u-${c}-${i}`, licenceKey: f.rdv.enforcedKey } } });
      }
      a.close();
    }
    await new Promise((r) => setTimeout(r, 300));
    const seconds = (Date.now() - t0) / 1000;
    const bound = 40 + Math.ceil(seconds * 20) + 1;
    console.log(`# ${CONNS * PER_CONN} requests in ${seconds.toFixed(1)} s, ${got} reached the target (bound ${bound})`);
    assert.ok(got <= bound, `${got} forwarded, more than ${bound}`);
    // Another source is not held back by the first one's storm.
    const other = await TcpPeer.connect(f.port, { localAddress: '127.0.0.61' });
    const before = got;
    other.send({ union: { case: 'punchHoleRequest', value: { id: 'victim-1', licenceKey: f.rdv.enforcedKey } } });
    for (let i = 0; i < 40 && got === before; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(got, before + 1, 'the other address\'s punch reached the target');
    other.close();
    const dropped = await f.registry.getSingleMetric('dk_rendezvous_dropped_total')!.get();
    assert.ok(dropped.values.some((v) => v.labels.reason === 'forward_rate' && v.value > 0), JSON.stringify(dropped.values));
  } finally {
    b.close();
    await f.close();
  }
});
