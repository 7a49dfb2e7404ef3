import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { rendezvous } from '../../src/p2p/coord-client.ts';
import { Coordinator } from '../../src/p2p/coordinator.ts';
import { decodeToSide } from '../../src/p2p/coord-messages.ts';
import { readAll } from '../helpers/net.ts';

// The coordinator on loopback: pairing, observed addresses, roles, tokens, schedule; and what it
// does with sides that misbehave (each gets an error line and a closed connection).

async function started(over: ConstructorParameters<typeof Coordinator>[0] = { host: '127.0.0.1' }): Promise<{ c: Coordinator; port: number }> {
  const c = new Coordinator(over);
  return { c, port: (await c.listen()).port };
}

/** Sends raw bytes as a side would, and returns every line the coordinator answered before closing. */
async function rawSide(port: number, bytes: string | Buffer): Promise<string[]> {
  const s = connect({ host: '127.0.0.1', port });
  s.on('error', () => undefined);
  s.write(bytes);
  const { data } = await readAll(s, 10_000);
  return data.toString().split('\n').filter(Boolean);
}

test('two sides of a session: each gets the other\'s observed address and LAN candidates, opposite roles, one token', async () => {
  const { c, port } = await started();
  try {
    const [a, b] = await Promise.all([
      rendezvous({ host: '127.0.0.1', port, session: 'pair-1' }),
      new Promise((r) => setTimeout(r, 30)).then(() => rendezvous({ host: '127.0.0.1', port, session: 'pair-1' })),
    ]);
    assert.equal(c.paired, 1);
    // The first to join dials as the initiator.
    assert.deepEqual([a.go.role, b.go.role], ['initiator', 'responder']);
    assert.equal(a.go.token, b.go.token);
    assert.deepEqual(a.token, Buffer.from(a.go.token, 'hex'));
    // Observed = the port each side connected from (no NAT on loopback).
    assert.deepEqual(a.go.observed, { host: '127.0.0.1', port: a.localPort });
    assert.deepEqual(b.go.observed, { host: '127.0.0.1', port: b.localPort });
    assert.deepEqual(a.go.peer[0], { kind: 'public', host: '127.0.0.1', port: b.localPort });
    assert.deepEqual(b.go.peer[0], { kind: 'public', host: '127.0.0.1', port: a.localPort });
    for (const p of a.go.peer.slice(1)) assert.deepEqual([p.kind, p.port], ['lan', b.localPort]);
    // Loopback is never dialled: the ordered list holds only this machine's LAN addresses.
    assert.ok(a.candidates.every((x) => x.kind === 'lan' && x.host !== '127.0.0.1'));
    assert.ok(a.go.delayMs >= 0 && b.go.delayMs >= 0);
    // The connection stays open after go (it keeps the NAT mapping).
    assert.equal(a.socket.destroyed, false);
    a.socket.destroy();
    b.socket.destroy();
  } finally {
    await c.close();
  }
});

test('bad input: not JSON, an overlong line, a second hello, an unexpected pong — an error line, then close', async () => {
  const { c, port } = await started();
  try {
    const cases: [string | Buffer, RegExp][] = [
      ['nonsense\n', /not JSON/],
      [Buffer.alloc(5000, 0x61), /longer than 4096 bytes/],
      ['{"t":"hello","session":"x","lan":[]}\n{"t":"hello","session":"x","lan":[]}\n', /hello sent twice/],
      ['{"t":"pong","n":0}\n', /unexpected pong 0/],
      ['{"t":"hello","session":"bad session","lan":[]}\n', /session/],
    ];
    for (const [bytes, re] of cases) {
      const lines = await rawSide(port, bytes);
      const last = decodeToSide(lines.at(-1)!);
      assert.equal(last.t, 'error', String(lines));
      assert.match(last.t === 'error' ? last.message : '', re);
    }
    assert.equal(c.waiting, 0);
  } finally {
    await c.close();
  }
});

test('time limits: no hello, no pong, no peer — each an error naming it', async () => {
  const { c, port } = await started({ host: '127.0.0.1', helloTimeoutMs: 100, pingTimeoutMs: 100, pairTimeoutMs: 200 });
  try {
    assert.match((await rawSide(port, '')).join(), /no hello in time/);
    assert.match((await rawSide(port, '{"t":"hello","session":"s","lan":[]}\n')).join(), /no pong in time/);
    await assert.rejects(rendezvous({ host: '127.0.0.1', port, session: 'alone' }), (e: any) => e.code === 'DK_P2P_COORDINATOR' && /no peer joined session alone in time/.test(e.message));
    assert.equal(c.waiting, 0);
  } finally {
    await c.close();
  }
});

test('caps: sessions waiting and connections; a side whose peer leaves is told', async () => {
  const { c, port } = await started({ host: '127.0.0.1', maxWaiting: 1, maxConnections: 3 });
  try {
    const first = rendezvous({ host: '127.0.0.1', port, session: 'one', timeoutMs: 5_000 });
    first.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(c.waiting, 1);
    await assert.rejects(rendezvous({ host: '127.0.0.1', port, session: 'two' }), /coordinator full/);
    // Fill the connections: the next one is closed without a word.
    const held = [connect({ host: '127.0.0.1', port }), connect({ host: '127.0.0.1', port })];
    for (const h of held) h.on('error', () => undefined);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await rawSide(port, ''), []);
    for (const h of held) h.destroy();
    for (let i = 0; i < 100 && c.connections > 1; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(c.connections, 1);
    // A peer that joins and leaves before go: the waiting side hears why.
    const s = connect({ host: '127.0.0.1', port });
    s.on('error', () => undefined);
    s.write('{"t":"hello","session":"one","lan":[]}\n');
    s.once('data', () => s.destroy());
    await assert.rejects(first, /the peer left before the punch started/);
  } finally {
    await c.close();
  }
});

test('a side with more LAN addresses than the coordinator takes sends its first ones', async () => {
  const { c, port } = await started();
  const info = (i: number): import('node:os').NetworkInterfaceInfo =>
    ({ address: `10.0.${i}.1`, family: 'IPv4', internal: false, netmask: '255.255.255.0', mac: '00:00:00:00:00:00', cidr: null });
  const interfaces = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`eth${i}`, [info(i)]]));
  try {
    const [a, b] = await Promise.all([
      rendezvous({ host: '127.0.0.1', port, session: 'many', interfaces }),
      rendezvous({ host: '127.0.0.1', port, session: 'many', interfaces: {} }),
    ]);
    assert.equal(b.go.peer.filter((p) => p.kind === 'lan').length, 8);
    assert.deepEqual(b.candidates.map((x) => x.host), Array.from({ length: 8 }, (_, i) => `10.0.${i}.1`));
    a.socket.destroy();
    b.socket.destroy();
  } finally {
    await c.close();
  }
});

test('cap per address: one address holds at most maxPerAddress connections; another address still gets in', async () => {
  const { c, port } = await started({ host: '127.0.0.1', maxPerAddress: 2, maxConnections: 10 });
  try {
    const held = [connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' }), connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' })];
    for (const h of held) h.on('error', () => undefined);
    for (let i = 0; i < 100 && c.connections < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(c.connections, 2);
    // A third from 127.0.0.2 is closed at once; one from 127.0.0.3 is taken.
    const third = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
    third.on('error', () => undefined);
    await new Promise<void>((resolve) => third.once('close', () => resolve()));
    const other = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.3' });
    other.on('error', () => undefined);
    for (let i = 0; i < 100 && c.connections < 3; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(c.connections, 3);
    for (const h of [...held, other]) h.destroy();
  } finally {
    await c.close();
  }
});
