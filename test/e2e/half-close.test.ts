import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ADMIN, agent, gateway, online } from '../helpers/stack.ts';
import { dial, http, listen, readAll, waitFor } from '../helpers/net.ts';

for (const seedOnly of [false, true]) {
  test(`TCP half-close end to end ${seedOnly ? '(seed-only agent: CLS after the data)' : '(FIN carried by the extension)'}`, async () => {
    const gw = await gateway();
    const ag = await agent(gw.servPort, { seed_only: seedOnly, plain: seedOnly });
    await online(gw, 'home', seedOnly);
    // The agent's side of the link is up too (with the gateway's HELLO, unless seed-only).
    await waitFor(() => ag.mux !== null && (seedOnly || ag.mux.features !== 0), 5000, 'agent mux ready');
    // The target answers only after it has seen the client's EOF: a request/response over half-close.
    const t = await listen((s) => {
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('end', () => s.end(`got ${Buffer.concat(chunks).length} bytes then EOF`));
    });
    const g = (await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: t.port } })).json;
    const s = await dial(g.access_port);
    s.end(Buffer.alloc(100_000, 1));
    const got = await readAll(s);
    if (seedOnly) {
      // The seed protocol has no half-close: the client's FIN becomes CLS and the session ends.
      assert.equal(got.eof, true);
    } else {
      assert.equal(got.data.toString(), 'got 100000 bytes then EOF');
      assert.equal(got.eof, true);
    }
    await ag.stop();
    await gw.cleanup();
    t.server.close();
  });
}

test('seed-only agent: data flows both ways on the seed protocol (no extensions)', async () => {
  const gw = await gateway();
  const ag = await agent(gw.servPort, { seed_only: true, plain: true });
  await online(gw, 'home', true);
  assert.equal(gw.gateway.agents.get('home')!.mux.features, 0);
  const t = await listen((s) => { s.on('data', (c: Buffer) => s.write(c)); s.on('error', () => undefined); });
  const g = (await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: t.port } })).json;
  const s = await dial(g.access_port);
  const payload = Buffer.alloc(3 * 1024 * 1024, 7);
  const chunks: Buffer[] = [];
  let n = 0;
  const done = new Promise<void>((resolve) => s.on('data', (c: Buffer) => { chunks.push(c); n += c.length; if (n >= payload.length) resolve(); }));
  s.write(payload);
  await done;
  assert.ok(Buffer.concat(chunks).equals(payload));
  s.destroy();
  await ag.stop();
  await gw.cleanup();
  t.server.close();
});
