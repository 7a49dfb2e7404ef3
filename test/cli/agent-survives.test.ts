import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/stack.ts';
import { dk, eventually, freePort, killAll, lines, type Cli } from '../helpers/cli.ts';
import { dial, echoServer, readAll } from '../helpers/net.ts';

/**
 * The real `dk agent` process outlives its gateway: it is started before the gateway, it survives
 * the gateway being killed (-9) or stopped (SIGTERM) and restarted, and comes back online without
 * being restarted itself. It exits only when the pinned gateway key is wrong (code 6).
 */

const ADMIN = 'admin-token-for-cli-tests-0123456789';
const KEY = 'backend-key-for-cli-tests';
/** Fast retries (and a short link resume) keep each test to seconds; they come in through the environment. */
const AGENT_ENV = { DK_RECONNECT_MIN: '0.1', DK_RECONNECT_MAX: '1', DK_LINK_RESUME: '1' };
const RETRY = /reconnecting|retrying/;

interface Rig {
  dir: string;
  servPort: number;
  mgmtPort: number;
  gatewayKey: string;
  procs: Set<Cli>;
}

async function rig(): Promise<Rig> {
  const dir = tempDir();
  const pk = dk(['pubkey', '--data-dir', `${dir}/gw`]);
  const { code } = await pk.exited;
  assert.equal(code, 0, pk.err());
  return { dir, servPort: await freePort(), mgmtPort: await freePort(), gatewayKey: pk.out().trim(), procs: new Set() };
}

function startGateway(r: Rig): Cli {
  const g = dk(['gateway', '--bind', '127.0.0.1', '--serv-port', String(r.servPort), '--mgmt-port', String(r.mgmtPort),
    '--data-dir', `${r.dir}/gw`, '--admin-token', ADMIN, '--backend', `home=${KEY}`], { cwd: r.dir });
  r.procs.add(g);
  return g;
}

function startAgent(r: Rig, mode: 'link' | 'plain', gatewayKey = r.gatewayKey): Cli {
  const a = dk(['agent', '--gateway', `127.0.0.1:${r.servPort}`, '--name', 'home', '--key', KEY,
    ...(mode === 'plain' ? ['--plain'] : ['--gateway-key', gatewayKey])], { cwd: r.dir, env: AGENT_ENV });
  r.procs.add(a);
  return a;
}

/** Whether the gateway's API says backend "home" is online (false while the API is down). */
async function homeOnline(r: Rig): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${r.mgmtPort}/api/v1/backends`, { headers: { authorization: `Bearer ${ADMIN}` } });
    const body = (await res.json()) as { backends: { name: string; online: boolean }[] };
    return body.backends.some((b) => b.name === 'home' && b.online);
  } catch {
    return false;
  }
}

async function waitOnline(r: Rig, agent: Cli, gw: Cli): Promise<void> {
  await eventually(() => homeOnline(r), 20_000, () => `the agent online in the gateway's API\nagent: ${agent.err()}\ngateway: ${gw.err()}`);
}

/** Waits until the agent has logged `n` more failed attempts than it had, and is still running. */
async function survivesAttempts(agent: Cli, n: number): Promise<void> {
  const before = lines(agent.err(), RETRY);
  await eventually(() => lines(agent.err(), RETRY) >= before + n || !agent.running(), 20_000, () => `${n} more retries: ${agent.err()}`);
  assert.ok(agent.running(), `the agent is still running after ${n} failed attempts (it exited: ${agent.err()})`);
}

test('an agent started before its gateway keeps retrying, one log line per attempt, and comes online when the gateway starts', async () => {
  const r = await rig();
  try {
    const agent = startAgent(r, 'link');
    await survivesAttempts(agent, 3);
    const attempts = agent.err().split('\n').filter((l) => RETRY.test(l)).map((l) => JSON.parse(l) as { attempt: number; retry_ms: number });
    assert.deepEqual(attempts.slice(0, 3).map((a) => a.attempt), [1, 2, 3], 'one line per attempt, numbered');
    assert.ok(attempts.every((a) => a.retry_ms <= 1000), 'the delay stays within reconnect_max');
    const gw = startGateway(r);
    await waitOnline(r, agent, gw);
    assert.ok(agent.running());
    agent.kill('SIGTERM');
    assert.equal((await agent.exited).code, 0, 'SIGTERM still stops it, with code 0');
  } finally {
    await killAll(r.procs);
  }
});

for (const [mode, signal] of [['link', 'SIGKILL'], ['plain', 'SIGKILL'], ['link', 'SIGTERM']] as const) {
  test(`${mode} agent: the gateway stopped by ${signal} and restarted on the same ports and data dir; the same agent process comes back online`, async () => {
    const r = await rig();
    try {
      let gw = startGateway(r);
      const agent = startAgent(r, mode);
      const pid = agent.pid;
      await waitOnline(r, agent, gw);
      for (let round = 0; round < 2; round++) {
        gw.kill(signal);
        const { code, signal: got } = await gw.exited;
        if (signal === 'SIGTERM') assert.equal(code, 0, 'a SIGTERM stops the gateway cleanly');
        else assert.equal(got, 'SIGKILL');
        // The gateway is down: the agent keeps trying, and stays alive.
        await survivesAttempts(agent, 2);
        gw = startGateway(r);
        await waitOnline(r, agent, gw);
        assert.ok(agent.running(), `round ${round}: the agent never exited`);
        assert.equal(agent.pid, pid);
      }
    } finally {
      await killAll(r.procs);
    }
  });
}

test('an agent that pins the wrong gateway key exits with code 6 and says how to fix it', async () => {
  const r = await rig();
  try {
    const other = dk(['pubkey', '--data-dir', `${r.dir}/other`]);
    await other.exited;
    const wrong = other.out().trim();
    assert.notEqual(wrong, r.gatewayKey);
    const gw = startGateway(r);
    await eventually(() => /gateway listening for agents/.test(gw.err()), 15_000, () => `the gateway up: ${gw.err()}`);
    const agent = startAgent(r, 'link', wrong);
    const { code, ms } = await agent.exited;
    assert.equal(code, 6, agent.err());
    assert.ok(ms < 20_000, `gave up in ${ms} ms`);
    assert.match(agent.err(), /^dk: the gateway at 127\.0\.0\.1:\d+ does not hold the pinned gateway_key .*dk pubkey/m);
    assert.equal(lines(agent.err(), /did not prove it holds the pinned key/), 2, 'two retries before giving up on the third failure');
    assert.equal(await homeOnline(r), false);
  } finally {
    await killAll(r.procs);
  }
});

test('Agent#stop() lets the process go: nothing else holds it once the agent is stopped', async () => {
  const port = await freePort(); // nothing listens there
  const script = `
    import { Agent } from ${JSON.stringify(new URL('../../src/agent/agent.ts', import.meta.url).href)};
    import { AgentConfigSchema } from ${JSON.stringify(new URL('../../src/config/agent-config.ts', import.meta.url).href)};
    import { pino } from 'pino';
    // The agent logs one line per failed attempt, then waits 5-10 s (reconnect_min 10) for the
    // next. Stop it then: the process must end by itself at once (no process.exit), so nothing the
    // agent started, its pending retry least of all, may still hold the event loop.
    const log = pino({ level: 'warn' }, { write() { void agent.stop().then(() => console.log('stopped')); } });
    const agent = new Agent(AgentConfigSchema.parse({ gateway: '127.0.0.1:${port}', name: 'home', key: '${KEY}', plain: true, reconnect_min: 10, reconnect_max: 10 }), log);
    agent.start();
  `;
  const p = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let stoppedAt = 0;
  p.stdout.on('data', (c: Buffer) => { out += c.toString(); if (out.includes('stopped')) stoppedAt ||= Date.now(); });
  const killer = setTimeout(() => p.kill('SIGKILL'), 15_000);
  const [code, signal] = (await once(p, 'exit')) as [number | null, string | null];
  clearTimeout(killer);
  assert.equal(signal, null, 'the process ended by itself after stop()');
  assert.equal(code, 0);
  assert.equal(out.trim(), 'stopped');
  assert.ok(Date.now() - stoppedAt < 2000, `it ended ${Date.now() - stoppedAt} ms after stop(), not when the 5-10 s retry would have fired`);
});

test('dk connect outlives an unreachable gateway too: a local connection fails, the process stays, and works once the gateway is up', async () => {
  const r = await rig();
  const echo = await echoServer();
  try {
    const fwd = dk(['connect', 'home', String(echo.port), '-L', '127.0.0.1:0', '--gateway', `127.0.0.1:${r.servPort}`, '--gateway-key', r.gatewayKey],
      { cwd: r.dir, env: { DK_TOKEN: ADMIN } });
    r.procs.add(fwd);
    await eventually(() => /dk connect: 127\.0\.0\.1:\d+/.test(fwd.out()) || !fwd.running(), 15_000, () => `dk connect listening: ${fwd.err()}`);
    const local = Number(/dk connect: 127\.0\.0\.1:(\d+)/.exec(fwd.out())?.[1]);
    for (let i = 0; i < 2; i++) {
      const s = await dial(local);
      s.end('nobody there');
      assert.equal((await readAll(s)).data.length, 0, 'no gateway: the local connection ends without data');
    }
    await eventually(() => lines(fwd.err(), /ECONNREFUSED/) >= 2 || !fwd.running(), 10_000, () => `two refusals logged: ${fwd.err()}`);
    assert.ok(fwd.running(), `dk connect is still running: ${fwd.err()}`);
    const gw = startGateway(r);
    const agent = startAgent(r, 'link');
    await waitOnline(r, agent, gw);
    const s = await dial(local);
    s.end('gateway is up');
    assert.equal((await readAll(s)).data.toString(), 'gateway is up', fwd.err());
  } finally {
    echo.server.close();
    await killAll(r.procs);
  }
});
