import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { BIN, dk, eventually, freePort, killAll, type Cli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/stack.ts';
import { http } from '../helpers/net.ts';
import { duplicateKeys } from '../helpers/json-keys.ts';

const ADMIN = 'admin-token-for-log-tests-0123';
const KEY = 'backend-key-for-log-tests';

/** The JSON lines of a process's stderr, each checked for keys written twice. */
function jsonLines(text: string): Record<string, unknown>[] {
  return text.split('\n').filter((l) => l !== '').map((l) => {
    assert.deepEqual(duplicateKeys(l), [], `a key written twice in: ${l}`);
    return JSON.parse(l) as Record<string, unknown>;
  });
}

async function startGateway(procs: Cli[], extra: Record<string, string> = {}): Promise<{ gw: Cli; servPort: number; api: string; pub: string }> {
  const servPort = await freePort();
  const mgmtPort = await freePort();
  const base = 20_000 + Math.floor(Math.random() * 12_000);
  const gw = dk(['gateway', '--serv-port', String(servPort), '--mgmt-port', String(mgmtPort), '--bind', '127.0.0.1', '--data-dir', tempDir(),
    '--backend', `home=${KEY}`, '--admin-token', ADMIN], { env: { DK_ACCESS_PORTS: `${base}-${base + 20}`, ...extra } });
  procs.push(gw);
  await eventually(() => /link public key (\S+)/.test(gw.out()) || !gw.running(), 20_000, () => `the gateway to start: ${gw.err()}`);
  return { gw, servPort, api: `http://127.0.0.1:${mgmtPort}`, pub: /link public key (\S+)/.exec(gw.out())![1]! };
}

test('logs: JSON lines on a pipe, no key twice (agent and gateway); grant creation and revocation at info', async (t) => {
  const procs: Cli[] = [];
  t.after(() => killAll(procs));
  const { gw, servPort, api, pub } = await startGateway(procs);
  const ag = dk(['agent', '--gateway', `127.0.0.1:${servPort}`, '--gateway-key', pub, '--name', 'home', '--key', KEY]);
  procs.push(ag);
  await eventually(() => ag.err().includes('connected to gateway'), 20_000, () => `the agent to connect: ${ag.err()}`);

  const g = await http('POST', `${api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: 22 } });
  assert.equal(g.status, 201);
  const id = g.json.grant_id as string;
  assert.equal((await http('DELETE', `${api}/api/v1/grants/${id}`, { token: ADMIN })).status, 200);
  await eventually(() => gw.err().includes('grant revoked'), 10_000, () => gw.err());

  const agentLines = jsonLines(ag.err());
  const connected = agentLines.find((l) => l.msg === 'connected to gateway');
  assert.equal(connected?.name, 'agent', 'the logger name, once');
  assert.equal(connected?.backend, 'home', 'the backend name under its own key');

  const gwLines = jsonLines(gw.err());
  assert.ok(!gwLines.some((l) => String(l.msg).includes('plain HTTP')), 'no plain-HTTP warning for an API on loopback');
  const created = gwLines.find((l) => l.msg === 'grant created');
  assert.equal(created?.level, 30, 'grant creation at info');
  assert.equal(created?.grant, id);
  assert.equal(created?.user, 'admin');
  assert.equal(created?.backend, 'home');
  assert.equal(created?.target, '127.0.0.1:22');
  const revoked = gwLines.find((l) => l.msg === 'grant revoked');
  assert.equal(revoked?.level, 30, 'revocation at info');
  assert.equal(revoked?.grant, id);
  assert.equal(revoked?.by, 'admin');
});

test('logs: DK_LOG_FORMAT=pretty gives readable lines even on a pipe; --log-format json wins over it; a bad value is a usage error', async (t) => {
  const procs: Cli[] = [];
  t.after(() => killAll(procs));
  const { gw, servPort, pub } = await startGateway(procs, { DK_LOG_FORMAT: 'pretty' });
  assert.match(gw.err(), /^\[[\d:.]+\] INFO \(gateway\): gateway listening for agents \{"serv_port":\d+/m);
  assert.ok(!gw.err().trimStart().startsWith('{'), gw.err());

  const ag = dk(['agent', '--gateway', `127.0.0.1:${servPort}`, '--gateway-key', pub, '--name', 'home', '--key', KEY, '--log-format', 'json'], { env: { DK_LOG_FORMAT: 'pretty' } });
  procs.push(ag);
  await eventually(() => ag.err().includes('connected to gateway'), 20_000, () => ag.err());
  assert.ok(jsonLines(ag.err()).length > 0);

  const bad = dk(['agent', '--gateway', `127.0.0.1:${servPort}`, '--name', 'home', '--key', KEY, '--log-format', 'xml']);
  procs.push(bad);
  const r = await bad.exited;
  assert.equal(r.code, 2);
  assert.match(bad.err(), /xml.*json, pretty/s);
});

test('logs: pretty and coloured when stderr is a terminal (a pseudo-terminal from script(1))', { skip: !existsSync('/usr/bin/script') && 'no script(1) here' }, async (t) => {
  const procs: Cli[] = [];
  t.after(() => killAll(procs));
  const { servPort, pub } = await startGateway(procs);
  const cmd = [process.execPath, BIN, 'agent', '--gateway', `127.0.0.1:${servPort}`, '--gateway-key', pub, '--name', 'home', '--key', KEY].join(' ');
  const env = { ...process.env };
  delete env.DK_LOG_FORMAT;
  const tty = spawn('/usr/bin/script', ['-q', '-e', '-c', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env });
  let out = '';
  tty.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  t.after(() => { tty.kill('SIGKILL'); });
  await eventually(() => out.includes('connected to gateway'), 20_000, () => out);
  const line = out.split('\n').find((l) => l.includes('connected to gateway'))!;
  assert.match(line, /\x1b\[\d+m/, 'coloured'); // eslint-disable-line no-control-regex
  assert.match(line.replace(/\x1b\[[\d;]*m/g, ''), /^\[[\d:.]+\] INFO \(agent\): connected to gateway \{.*"backend":"home"/); // eslint-disable-line no-control-regex
  tty.stdin.end('\x03'); // ^C through the terminal: the agent stops
  await once(tty, 'exit');
});
