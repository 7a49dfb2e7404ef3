import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tempDir } from '../helpers/stack.ts';
import { dk, eventually, freePort, killAll, lines, type Cli } from '../helpers/cli.ts';
import { dial, echoServer, readAll } from '../helpers/net.ts';

/**
 * `dk connect` and `dk agent` find out at start when their gateway key or credentials are wrong,
 * and exit with a clear line and a documented code; what merely looks like an unreachable gateway
 * never makes them exit. `dk access` prints the API's warnings and its 409.
 */

const ADMIN = 'admin-token-for-start-checks-0123456789';
const KEY = 'backend-key-for-start-checks';
const AGENT_ENV = { DK_RECONNECT_MIN: '0.1', DK_RECONNECT_MAX: '0.5' };

interface Rig { dir: string; servPort: number; mgmtPort: number; gatewayKey: string; procs: Set<Cli> }

async function rig(): Promise<Rig> {
  const dir = tempDir();
  const pk = dk(['pubkey', '--data-dir', `${dir}/gw`]);
  assert.equal((await pk.exited).code, 0, pk.err());
  const r = { dir, servPort: await freePort(), mgmtPort: await freePort(), gatewayKey: pk.out().trim(), procs: new Set<Cli>() };
  const gw = dk(['gateway', '--bind', '127.0.0.1', '--serv-port', String(r.servPort), '--mgmt-port', String(r.mgmtPort),
    '--data-dir', `${dir}/gw`, '--admin-token', ADMIN, '--backend', `home=${KEY}`], { cwd: dir });
  r.procs.add(gw);
  await eventually(() => /gateway listening for agents/.test(gw.err()) && /management API/.test(gw.err()), 15_000, () => `the gateway up: ${gw.err()}`);
  return r;
}

function agent(r: Rig, args: string[]): Cli {
  const a = dk(['agent', '--gateway', `127.0.0.1:${r.servPort}`, '--name', 'home', ...args], { cwd: r.dir, env: AGENT_ENV });
  r.procs.add(a);
  return a;
}

async function backend(r: Rig): Promise<{ online: boolean; allowlist: string[] | null }> {
  const res = await fetch(`http://127.0.0.1:${r.mgmtPort}/api/v1/backends`, { headers: { authorization: `Bearer ${ADMIN}` } });
  return ((await res.json()) as { backends: { online: boolean; allowlist: string[] | null }[] }).backends[0]!;
}

function connect(r: Rig, port: number, extra: string[], token = ADMIN): Cli {
  const c = dk(['connect', 'home', String(port), '-L', '127.0.0.1:0', '--gateway', `127.0.0.1:${r.servPort}`, ...extra], { cwd: r.dir, env: { DK_TOKEN: token } });
  r.procs.add(c);
  return c;
}

test('dk connect: a wrong --gateway-key exits 6 and a wrong token exits 3, at start; right ones listen and carry data', async () => {
  const r = await rig();
  const echo = await echoServer();
  try {
    const other = dk(['pubkey', '--data-dir', `${r.dir}/other`]);
    await other.exited;
    const wrongKey = connect(r, echo.port, ['--gateway-key', other.out().trim()]);
    const k = await wrongKey.exited;
    assert.equal(k.code, 6, wrongKey.err());
    assert.match(wrongKey.err(), /^dk: the gateway at 127\.0\.0\.1:\d+ does not hold this --gateway-key .*dk pubkey/m);
    assert.equal(wrongKey.out(), '', 'never listened');

    const wrongToken = connect(r, echo.port, ['--gateway-key', r.gatewayKey], 'dk_not-a-token');
    const t = await wrongToken.exited;
    assert.equal(t.code, 3, wrongToken.err());
    assert.match(wrongToken.err(), /^dk: the gateway at 127\.0\.0\.1:\d+ refused: unauthorized: unknown API token: check --token-file/m);
    assert.equal(wrongToken.out(), '');

    // The backend offline at start is not fatal: dk connect listens, warns, and works once the agent is there.
    const fine = connect(r, echo.port, ['--gateway-key', r.gatewayKey]);
    await eventually(() => /dk connect: 127\.0\.0\.1:\d+/.test(fine.out()) || !fine.running(), 15_000, () => `listening: ${fine.err()}`);
    assert.match(fine.err(), /could not check the gateway at start \(backend_offline/);
    const a = agent(r, ['--key', KEY, '--gateway-key', r.gatewayKey]);
    await eventually(async () => (await backend(r)).online, 15_000, () => `agent online: ${a.err()}`);
    const s = await dial(Number(/dk connect: 127\.0\.0\.1:(\d+)/.exec(fine.out())![1]));
    s.end('checked at start');
    assert.equal((await readAll(s)).data.toString(), 'checked at start', fine.err());
  } finally {
    echo.server.close();
    await killAll(r.procs);
  }
});

test("dk connect to a target outside the agent's allowlist exits 3 at start; dk access gets 409 (exit 4) and prints warnings", async () => {
  const r = await rig();
  try {
    const api = ['--api', `http://127.0.0.1:${r.mgmtPort}`, '--token', ADMIN];
    // No agent yet: the grant is made, with a warning on stderr.
    const offline = dk(['access', 'home', '22', ...api], { cwd: r.dir });
    assert.equal((await offline.exited).code, 0, offline.err());
    assert.match(offline.out(), /^access port \d+/);
    assert.match(offline.err(), /^dk: warning: backend "home" is offline/m);

    const a = agent(r, ['--key', KEY, '--gateway-key', r.gatewayKey, '--allow', '127.0.0.1/32:22,8000-8100']);
    await eventually(async () => (await backend(r)).allowlist !== null, 15_000, () => `allowlist told: ${a.err()}`);
    assert.deepEqual((await backend(r)).allowlist, ['127.0.0.1/32:22,8000-8100']);
    const refused = dk(['access', 'home', '3389', ...api], { cwd: r.dir });
    assert.equal((await refused.exited).code, 4, refused.err());
    assert.match(refused.err(), /^dk: 409: backend "home"'s agent would refuse 127\.0\.0\.1:3389: the agent allows only 127\.0\.0\.1\/32:22,8000-8100/m);
    const ok = dk(['access', 'home', '8080', ...api], { cwd: r.dir });
    assert.equal((await ok.exited).code, 0, ok.err());
    assert.equal(ok.err(), '', 'online and allowed: no warning');

    const c = connect(r, 3389, ['--gateway-key', r.gatewayKey]);
    const { code } = await c.exited;
    assert.equal(code, 3, c.err());
    assert.match(c.err(), /refused: refused_by_allowlist: backend "home"'s agent would refuse 127\.0\.0\.1:3389/);
  } finally {
    await killAll(r.procs);
  }
});

test('dk agent with a wrong backend key: over the encrypted link the gateway says so, and the agent exits 3; in plain mode it keeps retrying', async () => {
  const r = await rig();
  try {
    const wrong = agent(r, ['--key', 'not-the-backend-key', '--gateway-key', r.gatewayKey]);
    const { code, ms } = await wrong.exited;
    assert.equal(code, 3, wrong.err());
    assert.ok(ms < 20_000, `gave up in ${ms} ms`);
    assert.match(wrong.err(), /^dk: the gateway at 127\.0\.0\.1:\d+ refused this agent on 3 connections in a row: it has no backend "home" with this key/m);
    assert.equal(lines(wrong.err(), /the gateway refused backend \\"home\\" with this key/), 2, 'two retries before giving up on the third refusal');
    // Plain mode: nobody can vouch for an answer, so the agent never gives up.
    const plain = agent(r, ['--key', 'not-the-backend-key', '--plain']);
    await eventually(() => lines(plain.err(), /reconnecting/) >= 5 || !plain.running(), 20_000, () => `retries: ${plain.err()}`);
    assert.ok(plain.running(), plain.err());
    // The right key still gets in.
    const good = agent(r, ['--key', KEY, '--gateway-key', r.gatewayKey]);
    await eventually(async () => (await backend(r)).online, 15_000, () => `agent online: ${good.err()}`);
  } finally {
    await killAll(r.procs);
  }
});
