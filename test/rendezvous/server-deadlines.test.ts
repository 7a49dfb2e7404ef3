import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { encodeFrame } from '../../src/rendezvous/framing.ts';
import { startRendezvous, TcpPeer, WsPeer } from '../helpers/rustdesk.ts';

/**
 * Deadlines and caps a hostile peer meets on the rendezvous ports, over real loopback sockets:
 * a message must be complete within `idle` of the previous one however the bytes trickle in
 * (hbbs: timeout(30 s, stream.next()) per message), a TCP-registered peer that stops answering
 * heartbeats is closed although the server keeps writing to it, and connections to the WebSocket
 * port count against the connection caps from the accept, not only once they upgrade.
 */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Sends all but the last byte of `frame`, one every `everyMs`, stopping when the server closes the
 * connection; true = it closed (the frame was never complete, so nothing else could close it).
 */
async function trickle(p: TcpPeer, frame: Uint8Array, everyMs: number): Promise<boolean> {
  for (const b of frame.subarray(0, frame.length - 1)) {
    if (p.socket.destroyed || p.frames.ended) return true;
    p.write(Uint8Array.of(b));
    await sleep(everyMs);
  }
  return p.closed(100);
}

test('slowloris: a frame trickled one byte at a time is cut off after `idle`, on N and on N-1', async () => {
  const f = await startRendezvous({ idle: 1 });
  try {
    // A 40-byte payload at one byte per 150 ms takes 6 s; each byte arrives well within `idle`.
    const frame = encodeFrame(Buffer.alloc(40, 0x0a));
    for (const port of [f.port, f.natPort]) {
      const p = await TcpPeer.connect(port);
      assert.ok(await trickle(p, frame, 150), `port ${port === f.port ? 'N' : 'N-1'}: closed before the trickled frame completed`);
      p.close();
    }
  } finally {
    await f.close();
  }
});

test('a TCP-registered peer that reads the heartbeats but never answers is closed and offline; one that answers stays', async () => {
  const f = await startRendezvous({ keep_alive: 1 });
  try {
    const register = async (id: string, fill: number): Promise<TcpPeer> => {
      const p = await TcpPeer.connect(f.port);
      p.send({ union: { case: 'registerPk', value: { id, uuid: Buffer.from(`u-${id}`), pk: Buffer.alloc(32, fill) } } });
      const r = await p.next();
      assert.equal(r?.union.case === 'registerPkResponse' && r.union.value.result, 0);
      return p;
    };
    const mute = await register('mute-peer-1', 4);
    const live = await register('live-peer-1', 5);
    // The live one answers every heartbeat, as start_tcp does; the mute one reads and stays silent.
    live.socket.on('data', () => live.write(encodeFrame(new Uint8Array(0))));
    let closed = false;
    for (let i = 0; i < 40 && !closed; i++) {
      await sleep(250);
      closed = mute.socket.destroyed || mute.frames.ended;
    }
    assert.ok(closed, 'the silent peer is closed (3 × the heartbeat interval without a frame)');
    assert.ok(!live.socket.destroyed && !live.frames.ended, 'the answering peer is still connected');
    const online = [...f.rdv.table.values()].filter((p) => f.rdv.table.isOnline(p)).map((p) => p.id);
    assert.deepEqual(online, ['live-peer-1']);
    live.close();
  } finally {
    await f.close();
  }
});

test('connections to the WebSocket port count against max_connections_per_ip before they upgrade', async () => {
  const f = await startRendezvous({ max_connections_per_ip: 3 });
  const held: Socket[] = [];
  try {
    const raw = async (): Promise<Socket> => {
      const s = connect({ port: f.wsPort, host: '127.0.0.1', localAddress: '127.0.0.21' });
      s.on('error', () => undefined);
      await once(s, 'connect');
      return s;
    };
    // Three connections that never send a byte hold the address's three slots...
    for (let i = 0; i < 3; i++) held.push(await raw());
    // ... so a fourth is closed at once, and a WebSocket from that address is refused too.
    const fourth = await raw();
    const closedAtOnce = await Promise.race([once(fourth, 'close').then(() => true), sleep(2000).then(() => false)]);
    fourth.destroy();
    assert.ok(closedAtOnce, 'the fourth connection from the address is closed');
    await assert.rejects(WsPeer.connect(f.wsPort, {}, '127.0.0.21'));
    // Closing them frees the slots.
    for (const s of held.splice(0)) s.destroy();
    let ws: WsPeer | null = null;
    for (let i = 0; i < 20 && !ws; i++) {
      ws = await WsPeer.connect(f.wsPort, {}, '127.0.0.21').catch(() => null);
      if (!ws) await sleep(100);
    }
    assert.ok(ws, 'a WebSocket gets in once the slots are free');
    ws.close();
  } finally {
    for (const s of held) s.destroy();
    await f.close();
  }
});

test('a peer registered over WebSocket (start_tcp over ws) gets heartbeats, stays connected and online while it answers them', async () => {
  const f = await startRendezvous({ keep_alive: 1, idle: 2 });
  try {
    const b = await WsPeer.connect(f.wsPort);
    b.send({ union: { case: 'registerPk', value: { id: 'ws-peer-1', uuid: Buffer.from('u-ws'), pk: Buffer.alloc(32, 6) } } });
    const r = await b.next();
    assert.equal(r?.union.case === 'registerPkResponse' && r.union.value.result, 0);
    // start_tcp answers every empty message with an empty message and sends nothing else once
    // its key is confirmed; it gives up on a connection that is silent for 1.5 × keep_alive.
    let beats = 0;
    b.ws.on('message', (d: Buffer) => {
      if (d.length === 0) {
        beats++;
        b.ws.send(new Uint8Array(0), { binary: true });
      }
    });
    await sleep(4500);
    assert.ok(beats >= 3, `heartbeats received: ${beats}`);
    assert.equal(b.ws.readyState, b.ws.OPEN, 'still connected after twice `idle`');
    const p = f.rdv.table.memory('ws-peer-1');
    assert.ok(p && f.rdv.table.isOnline(p), 'online');
    b.close();
  } finally {
    await f.close();
  }
});

test('with a long keep_alive the heartbeats still come often enough to keep a TCP-registered peer online (REG_TIMEOUT is 30 s)', async () => {
  // keep_alive 80 s: the client gives up after 120 s of silence, but a heartbeat every 40 s would
  // leave the peer offline for 10 s of every 40.
  const f = await startRendezvous({ keep_alive: 80 });
  try {
    const b = await TcpPeer.connect(f.port);
    b.send({ union: { case: 'registerPk', value: { id: 'long-ka-1', uuid: Buffer.from('u-long'), pk: Buffer.alloc(32, 8) } } });
    const r = await b.next();
    assert.equal(r?.union.case === 'registerPkResponse' && r.union.value.keepAlive, 80);
    const hb = await b.nextPayload(12_000);
    assert.equal(hb?.length, 0, 'a heartbeat within 10 s');
    b.close();
  } finally {
    await f.close();
  }
});

test('plain HTTP on the WebSocket port gets 426 and the connection is closed, not kept alive for more requests', async () => {
  const f = await startRendezvous();
  try {
    const s = connect({ port: f.wsPort, host: '127.0.0.1', localAddress: '127.0.0.22' });
    s.on('error', () => undefined);
    await once(s, 'connect');
    let text = '';
    s.on('data', (d: Buffer) => { text += d.toString('latin1'); });
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const closed = await Promise.race([once(s, 'close').then(() => true), sleep(3000).then(() => false)]);
    s.destroy();
    assert.match(text, /^HTTP\/1\.1 426/);
    assert.ok(closed, 'closed after the 426');
  } finally {
    await f.close();
  }
});
