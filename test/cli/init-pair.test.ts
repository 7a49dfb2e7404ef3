import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { tempDir } from '../helpers/stack.ts';
import { dk, eventually, freePort, killAll, type Cli } from '../helpers/cli.ts';

/**
 * `dk init` as a user runs it: the files it writes start a gateway and an agent that find each
 * other (same backend name and key, the gateway's public key), from any working directory, because
 * relative paths in a config file are relative to the file.
 */

/** Runs a short dk command to its end. */
async function run(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Cli & { code: number | null }> {
  const p = dk(args, { cwd, env });
  const { code } = await p.exited;
  return Object.assign(p, { code });
}

interface Ports { serv: number; mgmt: number }

/** Starts the gateway from its file and the agent from its file, each from a working directory of its own. */
async function startPair(gwFile: string, agFile: string, procs: Set<Cli>): Promise<{ gw: Cli; agent: Cli; ports: Ports; admin: string }> {
  const ports = { serv: await freePort(), mgmt: await freePort() };
  // Ports and bind come from the environment (it overrides the file) so that the test stays on loopback and free ports.
  const gw = dk(['gateway', '-c', gwFile], { cwd: tempDir(), env: { DK_BIND: '127.0.0.1', DK_SERV_PORT: String(ports.serv), DK_MGMT_PORT: String(ports.mgmt) } });
  procs.add(gw);
  const agent = dk(['agent', '-c', agFile], { cwd: tempDir(), env: { DK_GATEWAY: `127.0.0.1:${ports.serv}`, DK_RECONNECT_MIN: '0.1', DK_RECONNECT_MAX: '1' } });
  procs.add(agent);
  const admin = (parseYaml(readFileSync(gwFile, 'utf8')) as { admin_token: string }).admin_token;
  return { gw, agent, ports, admin };
}

async function backendOnline(mgmt: number, admin: string, name: string): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${mgmt}/api/v1/backends`, { headers: { authorization: `Bearer ${admin}` } });
    const body = (await res.json()) as { backends: { name: string; online: boolean }[] };
    return body.backends.some((b) => b.name === name && b.online);
  } catch {
    return false;
  }
}

test('`dk init` writes a matching pair: the gateway and the agent start from the two files, from other directories, and the agent is online', async () => {
  const dir = join(tempDir(), 'etc-dk');
  mkdirSync(dir);
  const init = await run(['init', '--dir', dir], tempDir());
  assert.equal(init.code, 0, init.err());
  const gwFile = join(dir, 'dk-gateway.yaml');
  const agFile = join(dir, 'dk-agent.yaml');
  const gwYaml = parseYaml(readFileSync(gwFile, 'utf8')) as { backends: Record<string, { key: string }>; data_dir: string };
  const agYaml = parseYaml(readFileSync(agFile, 'utf8')) as { name: string; key: string; gateway_key: string };
  assert.equal(agYaml.key, gwYaml.backends[agYaml.name]?.key, 'one key on both sides');
  assert.equal(gwYaml.data_dir, './dk-data', 'the file says ./dk-data: relative to the file');
  assert.ok(existsSync(join(dir, 'dk-data', 'link_key')), 'the link key is made beside the gateway config');
  const procs = new Set<Cli>();
  try {
    const { gw, agent, ports, admin } = await startPair(gwFile, agFile, procs);
    await eventually(() => backendOnline(ports.mgmt, admin, agYaml.name), 20_000, () => `agent online\nagent: ${agent.err()}\ngateway: ${gw.err()}`);
    // The gateway used the data dir beside its file (the key the agent pins), not one in its cwd.
    assert.match(gw.out(), new RegExp(`data in ${join(dir, 'dk-data').replace(/[/.]/g, '\\$&')}\\)`), gw.out());
    const pk = await run(['pubkey', '--data-dir', join(dir, 'dk-data')], tempDir());
    assert.equal(pk.out().trim(), agYaml.gateway_key);
    assert.match(agent.err(), /"encrypted":true/);
    // Running init again does not overwrite either file.
    const again = await run(['init', '--dir', dir], tempDir());
    assert.equal(again.code, 2);
    assert.match(again.err(), /exist; pass --force/);
  } finally {
    await killAll(procs);
  }
});

test('two hosts: `dk init gateway` prints the `dk init agent` line, and the agent config it writes matches', async () => {
  const gwHost = tempDir();
  const agHost = tempDir();
  const g = await run(['init', 'gateway', '--name', 'office'], gwHost);
  assert.equal(g.code, 0, g.err());
  const line = /dk init agent (.*)/.exec(g.out())?.[1];
  assert.ok(line, g.out());
  // Without the key the agent config would not match: refused, and it says where the key comes from.
  const noKey = await run(['init', 'agent', '--gateway-key', /--gateway-key (\S+)/.exec(line)![1]!], agHost);
  assert.equal(noKey.code, 2);
  assert.match(noKey.err(), /give the backend key the gateway has/);
  assert.equal(existsSync(join(agHost, 'dk-agent.yaml')), false);
  // As printed, with the gateway's address filled in; the key from a file, as the output advises.
  const key = /--key (\S+)/.exec(line)![1]!;
  writeFileSync(join(agHost, 'office.key'), key + '\n', { mode: 0o600 });
  const args = line.replace('GATEWAY_HOST', '127.0.0.1').replace(/--key \S+/, '--key-file office.key').split(' ');
  const a = await run(['init', 'agent', ...args], agHost);
  assert.equal(a.code, 0, a.err());
  // On the gateway host, the agent config can come from the gateway config itself.
  const b = await run(['init', 'agent', '--gateway-config', 'dk-gateway.yaml', '-o', 'local-agent.yaml'], gwHost);
  assert.equal(b.code, 0, b.err());
  const fromLine = parseYaml(readFileSync(join(agHost, 'dk-agent.yaml'), 'utf8')) as Record<string, string>;
  const fromConfig = parseYaml(readFileSync(join(gwHost, 'local-agent.yaml'), 'utf8')) as Record<string, string>;
  for (const k of ['name', 'key', 'gateway_key']) assert.equal(fromLine[k], fromConfig[k], k);
  assert.equal(fromLine.name, 'office');
  const procs = new Set<Cli>();
  try {
    const { gw, agent, ports, admin } = await startPair(join(gwHost, 'dk-gateway.yaml'), join(agHost, 'dk-agent.yaml'), procs);
    await eventually(() => backendOnline(ports.mgmt, admin, 'office'), 20_000, () => `agent online\nagent: ${agent.err()}\ngateway: ${gw.err()}`);
  } finally {
    await killAll(procs);
  }
});

test('dk user list never makes a data dir; dk user add warns about a user that can open nothing', async () => {
  const cwd = tempDir();
  const list = await run(['user', 'list', '--data-dir', 'nowhere'], cwd);
  assert.equal(list.code, 2, list.err());
  assert.match(list.err(), /^dk: data_dir nowhere: no such directory/);
  assert.equal(existsSync(join(cwd, 'nowhere')), false, 'nothing made');
  const remove = await run(['user', 'remove', 'bob', '--data-dir', 'nowhere'], cwd);
  assert.equal(remove.code, 2);
  assert.equal(existsSync(join(cwd, 'nowhere')), false, 'nothing made');
  mkdirSync(join(cwd, 'empty'));
  const empty = await run(['user', 'list', '--data-dir', 'empty'], cwd);
  assert.equal(empty.code, 2);
  assert.match(empty.err(), /holds no gateway database/);
  assert.equal(existsSync(join(cwd, 'empty', 'doorkeeper.db')), false);

  const nothing = await run(['user', 'add', 'alice', '--data-dir', 'state'], cwd);
  assert.equal(nothing.code, 0, nothing.err());
  assert.match(nothing.err(), /user "alice" may open nothing: give --backends/);
  assert.match(nothing.err(), /held no gateway database; made a new one/);
  const some = await run(['user', 'add', 'bob', '--backends', 'home', '--data-dir', 'state'], cwd);
  assert.equal(some.code, 0, some.err());
  assert.equal(some.err(), '', 'a user with a backend, in an existing data dir: no warning');
  const admin = await run(['user', 'add', 'carol', '--admin', '--data-dir', 'state'], cwd);
  assert.equal(admin.err(), '');
  const listed = await run(['user', 'list', '--data-dir', 'state'], cwd);
  assert.equal(listed.code, 0);
  assert.deepEqual(listed.out().trim().split('\n').map((l) => l.split(' ')[0]), ['alice', 'bob', 'carol']);
});
