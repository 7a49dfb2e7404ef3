import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { agent, gateway, online } from '../helpers/stack.ts';
import { dial, echoServer, readAll, waitFor } from '../helpers/net.ts';
import type { Agent } from '../../src/agent/agent.ts';

async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const p = (s.address() as { port: number }).port;
  s.close();
  return p;
}

function exposeAnswers(a: Agent): { remotePort: number; ok: boolean; message: string }[] {
  const got: { remotePort: number; ok: boolean; message: string }[] = [];
  a.on('expose', (e: { remotePort: number; ok: boolean; message: string }) => got.push(e));
  return got;
}

test('static tunnels: public, limited to source CIDRs, and refused outside expose_ports', async (t) => {
  const echo = await echoServer();
  t.after(() => echo.server.close());
  // The ports are free when picked, but a test running beside this one (or the gateway's own
  // listeners on port 0) may take one before the agent asks for it: then pick again, at most 3 times.
  const setUp = async () => {
    const [pub, limited, outside] = [await freePort(), await freePort(), await freePort()];
    const gw = await gateway({ expose_ports: `${Math.min(pub, limited)}-${Math.max(pub, limited)}` });
    const ag = await agent(gw.servPort, {
      lan_nets: ['127.0.0.1/32:1'], // nothing else allowed: expose targets are allowed by themselves
      expose: [
        { remote_port: pub, local: `127.0.0.1:${echo.port}` },
        { remote_port: limited, local: `127.0.0.1:${echo.port}`, allow: ['127.0.0.9/32'] },
        ...(outside < Math.min(pub, limited) || outside > Math.max(pub, limited) ? [{ remote_port: outside, local: `127.0.0.1:${echo.port}` }] : []),
      ],
    });
    const answers = exposeAnswers(ag);
    await online(gw);
    await waitFor(() => answers.length === ag.config.expose.length, 5000, 'expose answers');
    const taken = [pub, limited].some((p) => p === gw.servPort || p === gw.mgmtPort
      || answers.some((a) => a.remotePort === p && !a.ok && a.message.startsWith('cannot listen')));
    return { pub, limited, outside, gw, ag, answers, taken };
  };
  let r = await setUp();
  for (let attempt = 1; r.taken && attempt < 3; attempt++) {
    await r.ag.stop(); await r.gw.cleanup();
    r = await setUp();
  }
  const { pub, limited, outside, gw, ag, answers } = r;
  t.after(async () => { await ag.stop(); await gw.cleanup(); });
  assert.deepEqual(answers.filter((a) => a.ok).map((a) => a.remotePort).sort(), [pub, limited].sort());
  if (ag.config.expose.length === 3) assert.equal(answers.find((a) => a.remotePort === outside)?.ok, false, 'outside expose_ports: refused');

  const s = await dial(pub, '127.0.0.2');
  s.end('public');
  assert.equal((await readAll(s)).data.toString(), 'public');

  const denied = await dial(limited, '127.0.0.2');
  denied.end('let me in');
  assert.equal((await readAll(denied, 3000)).data.length, 0, 'source outside allow: closed');
  const allowed = await dial(limited, '127.0.0.9');
  allowed.end('limited');
  assert.equal((await readAll(allowed)).data.toString(), 'limited');

  // When the agent goes away, its tunnels close.
  await ag.stop();
  await waitFor(() => gw.gateway.exposes().length === 0, 3000, 'tunnels closed with the link');
  await assert.rejects(dial(pub));
});
