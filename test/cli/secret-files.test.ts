import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/stack.ts';
import { dial, echoServer, readAll } from '../helpers/net.ts';
import { dk, eventually, freePort, killAll, lines, type Cli } from '../helpers/cli.ts';

/**
 * The real `dk` takes its secrets from files (--admin-token-file, --backend-file, --key-file,
 * --token-file) or the environment (DK_ADMIN_TOKEN, DK_KEY, DK_TOKEN), so none of them need be
 * on a command line that every local user can read in /proc/PID/cmdline.
 */

const ADMIN = 'admin-token-in-a-file-0123456789';
const KEY = 'backend-key-in-a-file';

function secret(dir: string, name: string, text: string, mode = 0o600): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  chmodSync(f, mode);
  return f;
}

async function backends(mgmtPort: number, token: string): Promise<{ status: number; online: boolean }> {
  try {
    const res = await fetch(`http://127.0.0.1:${mgmtPort}/api/v1/backends`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await res.json()) as { backends?: { name: string; online: boolean }[] };
    return { status: res.status, online: !!body.backends?.some((b) => b.name === 'home' && b.online) };
  } catch {
    return { status: 0, online: false };
  }
}

const cmdline = (p: Cli): string => readFileSync(`/proc/${p.pid}/cmdline`, 'utf8');

test('secrets from files: the gateway takes its admin token and backend key, the agent its key, dk connect and dk access their token', async () => {
  const dir = tempDir();
  const procs = new Set<Cli>();
  const echo = await echoServer();
  try {
    const adminFile = secret(dir, 'admin-token', `${ADMIN}\n`);
    const backendFile = secret(dir, 'backend-key', `${KEY}\n`);
    const agentKeyFile = secret(dir, 'agent-key', `${KEY}\n`, 0o644); // readable by all: works, with a warning
    const [servPort, mgmtPort] = [await freePort(), await freePort()];
    const gw = dk(['gateway', '--bind', '127.0.0.1', '--serv-port', String(servPort), '--mgmt-port', String(mgmtPort), '--data-dir', `${dir}/gw`,
      '--admin-token-file', adminFile, '--backend-file', `home=${backendFile}`], { cwd: dir });
    procs.add(gw);
    await eventually(() => /link public key (\S+)/.test(gw.out()) || !gw.running(), 15_000, () => `the gateway's banner: ${gw.out()} ${gw.err()}`);
    assert.ok(gw.running(), gw.err());
    const gatewayKey = /link public key (\S+)/.exec(gw.out())?.[1];
    assert.ok(gatewayKey, gw.out());
    assert.equal(/admin token/.test(gw.out()), false, 'no generated admin token: the one from the file is used');
    const agent = dk(['agent', '--gateway', `127.0.0.1:${servPort}`, '--gateway-key', gatewayKey, '--name', 'home', '--key-file', agentKeyFile], { cwd: dir });
    procs.add(agent);
    // The admin token from the file is accepted; the backend key from one file matches the agent's from another.
    await eventually(async () => (await backends(mgmtPort, ADMIN)).online, 20_000, () => `the agent online\nagent: ${agent.err()}\ngateway: ${gw.err()}`);
    assert.equal((await backends(mgmtPort, `${ADMIN}x`)).status, 401, 'and only that token');
    assert.equal(lines(agent.err(), /--key-file .*agent-key is readable by its group and every local user \(mode 644\); run: chmod 600/), 1, agent.err());
    assert.equal(lines(gw.err(), /readable by/), 0, 'the gateway\'s 0600 files draw no warning');
    for (const p of [gw, agent]) assert.equal(cmdline(p).includes(KEY) || cmdline(p).includes(ADMIN), false, 'no secret in /proc/PID/cmdline');

    const tokenFile = secret(dir, 'api-token', `${ADMIN}\n`);
    const access = dk(['access', 'home', String(echo.port), '--api', `http://127.0.0.1:${mgmtPort}`, '--token-file', tokenFile, '--json'], { cwd: dir });
    const { code } = await access.exited;
    assert.equal(code, 0, access.err());
    assert.ok((JSON.parse(access.out()) as { access_port: number }).access_port > 0);

    const connect = dk(['connect', 'home', String(echo.port), '-L', '127.0.0.1:0', '--gateway', `127.0.0.1:${servPort}`, '--gateway-key', gatewayKey,
      '--token-file', tokenFile], { cwd: dir, env: { DK_TOKEN: 'an-env-token-that-the-file-overrides' } });
    procs.add(connect);
    await eventually(() => /dk connect: 127\.0\.0\.1:\d+/.test(connect.out()) || !connect.running(), 15_000, () => `dk connect listening: ${connect.err()}`);
    const local = Number(/dk connect: 127\.0\.0\.1:(\d+)/.exec(connect.out())?.[1]);
    const s = await dial(local);
    s.end('token from a file');
    assert.equal((await readAll(s)).data.toString(), 'token from a file', connect.err());
  } finally {
    echo.server.close();
    await killAll(procs);
  }
});

test('secrets from the environment: DK_ADMIN_TOKEN for the gateway, DK_KEY for the agent', async () => {
  const dir = tempDir();
  const procs = new Set<Cli>();
  try {
    const [servPort, mgmtPort] = [await freePort(), await freePort()];
    const gw = dk(['gateway', '--bind', '127.0.0.1', '--serv-port', String(servPort), '--mgmt-port', String(mgmtPort), '--data-dir', `${dir}/gw`,
      '--backend-file', `home=${secret(dir, 'backend-key', KEY)}`], { cwd: dir, env: { DK_ADMIN_TOKEN: ADMIN } });
    procs.add(gw);
    await eventually(() => /link public key (\S+)/.test(gw.out()) || !gw.running(), 15_000, () => `the gateway up: ${gw.err()}`);
    const gatewayKey = /link public key (\S+)/.exec(gw.out())![1]!;
    const agent = dk(['agent', '--gateway', `127.0.0.1:${servPort}`, '--gateway-key', gatewayKey, '--name', 'home'], { cwd: dir, env: { DK_KEY: KEY } });
    procs.add(agent);
    await eventually(async () => (await backends(mgmtPort, ADMIN)).online, 20_000, () => `the agent online\nagent: ${agent.err()}\ngateway: ${gw.err()}`);
  } finally {
    await killAll(procs);
  }
});

test('a secret file that cannot be used is a one-line configuration error (exit 2)', async () => {
  const dir = tempDir();
  const agentArgs = ['agent', '--gateway', '127.0.0.1:1', '--name', 'home', '--plain'];
  const cases: [string[], RegExp][] = [
    [[...agentArgs, '--key-file', join(dir, 'absent')], /^dk: --key-file .*absent: cannot read it: ENOENT/],
    [[...agentArgs, '--key-file', secret(dir, 'empty', '\n')], /^dk: --key-file .*empty: the file is empty/],
    [[...agentArgs, '--key', 'on-the-command-line', '--key-file', secret(dir, 'k', KEY)], /^dk: give --key or --key-file, not both/],
    [['gateway', '--admin-token-file', join(dir, 'absent'), '--data-dir', `${dir}/gw`], /^dk: --admin-token-file .*absent: cannot read it/],
    [['gateway', '--backend-file', 'home', '--data-dir', `${dir}/gw`], /^dk: --backend-file home: expected NAME=FILE/],
    [['connect', 'home', '22', '-L', '0', '--gateway', '127.0.0.1:1', '--gateway-key', 'A'.repeat(43)], /^dk: dk connect needs an API token/],
  ];
  for (const [args, re] of cases) {
    const p = dk(args, { cwd: dir, env: { DK_TOKEN: '' } });
    const { code } = await p.exited;
    assert.equal(code, 2, `dk ${args.join(' ')}: ${p.err()}`);
    assert.equal(p.err().trimEnd().split('\n').length, 1, p.err());
    assert.match(p.err(), re);
  }
});
