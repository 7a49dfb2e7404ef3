import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeHandshake } from '../../src/auth/handshake.ts';
import { ADMIN, agent, gateway, KEY, online } from '../helpers/stack.ts';
import { dial, echoServer, http, readAll, waitFor } from '../helpers/net.ts';

async function send(port: number, bytes: Buffer, waitMs: number): Promise<boolean> {
  const s = await dial(port);
  s.write(bytes);
  const r = await readAll(s, waitMs);
  s.destroy();
  return r.eof || r.error; // true: the gateway closed it
}

test('a plain handshake seen before a gateway restart is refused after it (SQLite replay cache)', async (t) => {
  const first = await gateway({ keepalive: 1 });
  const { servPort, dataDir } = first;
  let second: Awaited<ReturnType<typeof gateway>> | null = null;
  t.after(async () => { await (second ?? first).cleanup(); });
  const hs = makeHandshake('home', KEY);
  assert.equal(await send(servPort, hs, 400), false, 'the fresh handshake is accepted (the link stays open)');
  await first.stop();
  second = await gateway({ serv_port: servPort, keepalive: 1 }, dataDir);
  assert.equal(await send(servPort, hs, 2000), true, 'the replay is closed');
  const text = await (await fetch(`${second.api}/metrics`)).text();
  assert.match(text, /dk_agent_auth_failures_total\{reason="replay"\} 1/);
  assert.equal(second.gateway.agents.size, 0, 'the replay attached nothing');
});

test('a grant kept alive by a session keeps the deadline it earned, on disk while the session runs and across a restart', async (t) => {
  const idle = 1.5;
  const first = await gateway({ idle_close: idle });
  const { servPort, dataDir } = first;
  const echo = await echoServer();
  const ag = await agent(servPort, { reconnect_max: 0.3 });
  let second: Awaited<ReturnType<typeof gateway>> | null = null;
  t.after(async () => { await ag.stop(); await (second ?? first).cleanup(); echo.server.close(); });
  await online(first);
  const g = (await http('POST', `${first.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: echo.port } })).json;
  const s = await dial(g.access_port);
  s.on('data', () => undefined);
  const ticker = setInterval(() => s.write('x'), 100);
  t.after(() => clearInterval(ticker));
  await new Promise((r) => setTimeout(r, idle * 2000)); // the session outlives idle_close twice
  // What a crash now would leave behind: the deadline on disk moved with the session.
  const db = new DatabaseSync(join(dataDir, 'doorkeeper.db'), { readOnly: true });
  const row = db.prepare('SELECT start_before, created_at FROM grants WHERE id = ?').get(g.grant_id) as { start_before: number; created_at: number };
  db.close();
  assert.ok(row.start_before > row.created_at + idle * 1000 * 1.5, `on disk: start_before ${row.start_before - row.created_at} ms after creation`);
  assert.ok(row.start_before > Date.now(), 'and still in the future');
  clearInterval(ticker);
  s.destroy();
  await first.stop();
  second = await gateway({ serv_port: servPort, idle_close: idle, access_ports: `${g.access_port}-${g.access_port + 40}` }, dataDir);
  const grants = (await http('GET', `${second.api}/api/v1/grants`, { token: ADMIN })).json.grants as { grant_id: string; start_before_unix: number }[];
  assert.deepEqual(grants.map((x) => x.grant_id), [g.grant_id], 'the grant survived the restart');
  assert.ok(grants[0]!.start_before_unix * 1000 > Date.now() - 1000);
  await online(second);
  const c = await dial(g.access_port);
  c.end('after the restart');
  assert.equal((await readAll(c, 3000)).data.toString(), 'after the restart', 'and it is usable');
  // It still idles out in the end.
  await waitFor(() => second.gateway.grants.all().length === 0, idle * 1000 + 3000, 'the grant idles out after its last session');
});
