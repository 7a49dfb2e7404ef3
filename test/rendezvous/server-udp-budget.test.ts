import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeRendezvous } from '../../src/rendezvous/messages.ts';
import { registerPeer, startRendezvous, UdpPeer } from '../helpers/rustdesk.ts';

/**
 * No amplification over UDP: everything the server sends back for one datagram, together, is at
 * most as large as that datagram. A RegisterPeer with a lower serial is answered twice
 * (RegisterPeerResponse, then ConfigUpdate), so the two count together: a tiny spoofed
 * RegisterPeer must not get more bytes back than it carried.
 */
async function answers(u: UdpPeer, ms = 400): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (;;) {
    const b = await u.nextBytes(ms);
    if (!b) return out;
    out.push(b);
  }
}

test('the answers to one datagram together are never larger than it, ConfigUpdate included', async () => {
  const f = await startRendezvous({ serial: 300 });
  const u = await UdpPeer.open('127.0.0.71');
  try {
    const tiny = encodeRendezvous({ union: { case: 'registerPeer', value: { id: 'ab', serial: 0 } } });
    u.send(tiny, f.port);
    const got = await answers(u);
    const total = got.reduce((n, b) => n + b.length, 0);
    assert.ok(got.length >= 1, 'answered');
    assert.ok(total <= tiny.length, `${tiny.length} bytes in, ${total} out (${got.map((b) => b.toString('hex')).join(' ')})`);
    // A real client's RegisterPeer (a 9-digit id) has room for both answers.
    const b = await UdpPeer.open('127.0.0.72');
    await registerPeer(b, f.port, '123456789');
    await answers(b); // the ConfigUpdate that followed the helper's RegisterPeer
    const real = encodeRendezvous({ union: { case: 'registerPeer', value: { id: '123456789', serial: 0 } } });
    b.send(real, f.port);
    const both = await answers(b);
    assert.deepEqual(both.map((x) => x.toString('hex').slice(0, 2)), ['3a', '72'], 'RegisterPeerResponse, then ConfigUpdate');
    assert.ok(both.reduce((n, x) => n + x.length, 0) <= real.length);
    b.close();
  } finally {
    u.close();
    await f.close();
  }
});
