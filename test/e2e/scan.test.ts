import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ADMIN, agent, gateway, online } from '../helpers/stack.ts';
import { http, listen } from '../helpers/net.ts';

test('PORT QUERY: the agent connect-scans its lan_nets and the API returns the hosts with the port open', async (t) => {
  // Listeners on 127.0.0.2 and 127.0.0.4 share one port number; 127.0.0.3 has nothing.
  const a = await listen((s) => s.destroy(), '127.0.0.2');
  const b = await listen((s) => s.destroy(), '127.0.0.4').catch(() => null);
  let port = a.port;
  let other = b;
  if (!b || b.port !== a.port) {
    other?.server.close();
    const { createServer } = await import('node:net');
    const srv = createServer((s) => s.destroy()).listen(a.port, '127.0.0.4');
    await new Promise((r, j) => { srv.once('listening', r); srv.once('error', j); });
    other = { server: srv, port: a.port };
  }
  port = a.port;
  const gw = await gateway();
  // Only .2-.4 are scanned: the other test files run beside this one and listen on 127.0.0.1, and
  // one of them once held this port number there, which made 127.0.0.1 answer the scan.
  const ag = await agent(gw.servPort, { lan_nets: ['127.0.0.2/31:1024-65535', '127.0.0.4/32:1024-65535'], scan_timeout: 0.5 });
  t.after(async () => { await ag.stop(); await gw.cleanup(); a.server.close(); other?.server.close(); });
  await online(gw);
  const r = await http('GET', `${gw.api}/api/v1/backends/home/scan?port=${port}`, { token: ADMIN });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.hosts, ['127.0.0.2', '127.0.0.4']);
  assert.equal(r.json.complete, true);
  const refused = await http('GET', `${gw.api}/api/v1/backends/home/scan?port=2`, { token: ADMIN });
  assert.equal(refused.json.refused, true, 'a port outside every rule is refused by the agent');
  assert.deepEqual(refused.json.hosts, []);
  const offline = await http('GET', `${gw.api}/api/v1/backends/nope/scan?port=22`, { token: ADMIN });
  assert.equal(offline.status, 404);
});
