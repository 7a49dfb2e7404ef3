import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Forwarder } from '../../src/connect/forwarder.ts';
import { silentLogger } from '../../src/util/log.ts';
import { ADMIN, agent, gateway, online } from '../helpers/stack.ts';
import { dial, http, listen, waitFor } from '../helpers/net.ts';

// The gateway and `dk connect` hold a session's OPN back until the client's first bytes (or the
// end of the next loop turn). A protocol whose server speaks first (SSH, SMTP, MySQL) sends
// nothing from the client until it has the server's banner: its OPN must still leave, by itself.
const BANNER = 'SSH-2.0-dk-test\r\n';

async function bannerServer(): Promise<{ port: number; close(): void }> {
  const t = await listen((s) => {
    s.on('error', () => undefined);
    s.write(BANNER);
    s.on('data', (d: Buffer) => s.write(`echo ${d.toString()}`));
  });
  return { port: t.port, close: () => t.server.close() };
}

/** Connects, sends nothing, waits for the banner; then a reply to the banner comes back too. */
async function talk(port: number): Promise<void> {
  const s = await dial(port);
  let got = '';
  s.on('data', (d: Buffer) => { got += d.toString(); });
  await waitFor(() => got.length >= BANNER.length, 5_000, 'the banner, with the client silent');
  assert.equal(got, BANNER);
  s.write('SSH-2.0-client\r\n');
  await waitFor(() => got.length >= BANNER.length + 'echo SSH-2.0-client\r\n'.length, 5_000, 'the echo of the client line');
  assert.equal(got, `${BANNER}echo SSH-2.0-client\r\n`);
  s.destroy();
}

for (const plain of [false, true]) {
  test(`a server that speaks first is reached through an access port (${plain ? 'plain' : 'encrypted'} link) while the client is silent`, async (t) => {
    const gw = await gateway();
    const ag = await agent(gw.servPort, { plain });
    const target = await bannerServer();
    t.after(async () => { await ag.stop(); await gw.cleanup(); target.close(); });
    await online(gw);
    const g = (await http('POST', `${gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: target.port } })).json;
    for (let i = 0; i < 5; i++) await talk(g.access_port);
  });
}

test('a server that speaks first is reached through dk connect while the client is silent', async (t) => {
  const gw = await gateway();
  const ag = await agent(gw.servPort);
  const target = await bannerServer();
  await online(gw);
  const fwd = new Forwarder({
    gatewayHost: '127.0.0.1', gatewayPort: gw.servPort, gatewayKey: gw.gateway.linkKey.publicRaw, token: ADMIN,
    backend: 'home', port: target.port, bind: '127.0.0.1', localPort: 0, log: silentLogger,
  });
  const localPort = await fwd.listen();
  t.after(async () => { fwd.close(); await ag.stop(); await gw.cleanup(); target.close(); });
  for (let i = 0; i < 5; i++) await talk(localPort);
});
