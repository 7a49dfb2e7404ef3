import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { makeHandshake } from '../../src/auth/handshake.ts';
import { MAGIC as LINK_MAGIC } from '../../src/link/handshake.ts';
import { agent, gateway, KEY, online } from '../helpers/stack.ts';
import { waitFor } from '../helpers/net.ts';

/** Opens a connection from `localAddress` and sends `bytes`; resolves once connected. */
function hold(port: number, localAddress: string, bytes: Buffer): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', localAddress }, () => { s.write(bytes); resolve(s); });
    s.on('error', () => undefined);
    s.once('error', reject);
  });
}

const closed = (s: Socket): boolean => s.destroyed || s.readableEnded;

test('pre-auth: idle and magic-only connections from one address hold at most its share; an agent from another address still logs in', async (t) => {
  const gw = await gateway({ max_pending_handshakes: 64, max_pending_per_ip: 8, handshake: 2 });
  const held: Socket[] = [];
  t.after(async () => { for (const s of held) s.destroy(); await gw.cleanup(); });
  // 40 from 127.0.0.2, half sending only the link magic (they escaped the cap before), half nothing.
  for (let i = 0; i < 40; i++) held.push(await hold(gw.servPort, '127.0.0.2', i % 2 ? LINK_MAGIC : Buffer.alloc(0)));
  await waitFor(() => held.filter((s) => !closed(s)).length <= 8, 3000, 'connections over the share closed');
  const open = held.filter((s) => !closed(s)).length;
  console.log(`# attacker from one address holds ${open} of 40 pending connections (share 8)`);
  assert.equal(open, 8);
  const text = await (await fetch(`${gw.api}/metrics`)).text();
  assert.match(text, /dk_preauth_refused_total\{reason="per_ip"\} 32/);
  // The real agent dials from 127.0.0.1, an address with its own share.
  const ag = await agent(gw.servPort);
  t.after(() => ag.stop());
  await online(gw);
  // And the attacker's held connections all reach the handshake deadline.
  await waitFor(() => held.every(closed), 4000, 'every pending connection closed at the deadline');
});

test('pre-auth: the total cap counts plain and link connections alike; the deadline covers the link handshake and the inner one', async (t) => {
  const gw = await gateway({ max_pending_handshakes: 10, max_pending_per_ip: 10, handshake: 1 });
  const held: Socket[] = [];
  t.after(async () => { for (const s of held) s.destroy(); await gw.cleanup(); });
  for (let i = 0; i < 10; i++) held.push(await hold(gw.servPort, `127.0.0.${20 + i}`, i % 2 ? LINK_MAGIC : Buffer.from([1, 2, 3])));
  const extra = await hold(gw.servPort, '127.0.0.40', LINK_MAGIC);
  held.push(extra);
  await waitFor(() => closed(extra), 2000, 'the 11th pending connection is refused');
  assert.equal(held.slice(0, 10).filter(closed).length, 0, 'the first ten are still pending');
  const t0 = Date.now();
  await waitFor(() => held.every(closed), 3000, 'all closed at the 1 s deadline');
  console.log(`# 10 pending connections closed ${Date.now() - t0} ms after the 11th was refused (deadline 1000 ms)`);
  // A plain agent that sends half its handshake is closed at the same deadline.
  const half = await hold(gw.servPort, '127.0.0.50', makeHandshake('home', KEY).subarray(0, 16));
  held.push(half);
  const t1 = Date.now();
  await waitFor(() => closed(half), 3000, 'a half handshake is closed at the deadline');
  assert.ok(Date.now() - t1 >= 600, 'not before the deadline');
  const text = await (await fetch(`${gw.api}/metrics`)).text();
  assert.match(text, /dk_preauth_refused_total\{reason="overload"\} 1/);
  // The five plain ones and the half handshake meet the gate's deadline; the link ones meet it or
  // the link handshake's own timeout of the same length, whichever fires first.
  const timeouts = Number(/dk_preauth_refused_total\{reason="timeout"\} (\d+)/.exec(text)?.[1]);
  const linkTimeouts = Number(/dk_agent_auth_failures_total\{reason="link_handshake"\} (\d+)/.exec(text)?.[1] ?? 0);
  assert.ok(timeouts >= 6 && timeouts + linkTimeouts >= 11, `timeouts ${timeouts}, link handshake failures ${linkTimeouts}`);
});
