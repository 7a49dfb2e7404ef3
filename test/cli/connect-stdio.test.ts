import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { BIN, dk, eventually, freePort, killAll, type Cli } from '../helpers/cli.ts';
import { generateKeyPair } from '../../src/link/crypto.ts';
import { FaultProxy } from '../helpers/fault-proxy.ts';
import { echoServer } from '../helpers/net.ts';
import { ADMIN, agent, gateway, online, tempDir } from '../helpers/stack.ts';

/**
 * `dk connect … --stdio`: one session on stdin/stdout, as `ssh -o ProxyCommand` runs it. The real
 * CLI against a gateway and agent started here, through a fault proxy that cuts the client's link.
 */

async function stack(t: TestContext) {
  const gw = await gateway({ link_keepalive: 0.2, link_detach_timeout: 30 });
  const ag = await agent(gw.servPort, { keepalive: 0.2, link_resume: 30 });
  await online(gw);
  const proxy = await new FaultProxy(gw.servPort, 21).listen();
  const gatewayKey = gw.gateway.linkKey.publicRaw.toString('base64url');
  t.after(async () => { proxy.close(); await ag.stop(); await gw.cleanup(); });
  const connectArgs = (port: number): string[] => ['connect', 'home', String(port), '--stdio', '--gateway', `127.0.0.1:${proxy.port}`, '--gateway-key', gatewayKey];
  return { gw, ag, proxy, gatewayKey, connectArgs };
}

test('dk connect --stdio: the session is stdin/stdout, exact through link cuts; stdout holds nothing else; exit 0 at a clean end', async (t) => {
  const { gw, proxy, connectArgs, ag } = await stack(t);
  const echo = await echoServer();
  t.after(() => echo.server.close());
  const p = dk(connectArgs(echo.port), { stdin: 'pipe', env: { DK_TOKEN: ADMIN } });
  t.after(() => killAll([p]));
  let expected = '';
  for (let round = 0; round < 12; round++) {
    const line = `line ${round} ${'y'.repeat(round * 101)}\n`;
    expected += line;
    p.stdin!.write(line);
    await eventually(() => p.out().length >= expected.length || !p.running(), 15_000, () => `the echo of round ${round} (stderr: ${p.err()})`);
    assert.equal(p.out(), expected, `round ${round}`);
    if (round % 3 === 1) proxy.inject('reset');
  }
  assert.ok(proxy.counts.reset >= 3, 'the link was cut');
  assert.ok(proxy.connections > proxy.counts.reset, `the link came back through the proxy (${proxy.connections} connections)`);
  // The session runs end to end with the agent (docs/p2p.md): one end-to-end client at the gateway, which carries no session itself.
  assert.equal(gw.gateway.e2e.clients.size, 1, 'one end-to-end client all along');
  assert.equal(gw.gateway.sessions.size, 0, 'the gateway carries no session of its own: it relays ciphertext');
  assert.equal(ag.e2e?.links, 1, 'the agent carries one end-to-end link');
  p.stdin!.end();
  const { code } = await p.exited;
  assert.equal(code, 0, p.err());
  assert.equal(p.out(), expected, 'stdout is the session bytes alone');
  assert.equal(p.err(), '', 'nothing to say at a clean end');
});

test('dk connect --stdio: a refusal (token, target, gateway key) exits non-zero with one line on stderr and nothing on stdout', async (t) => {
  const { connectArgs } = await stack(t);
  const echo = await echoServer();
  t.after(() => echo.server.close());
  const bad = dk(connectArgs(echo.port), { stdin: 'pipe', env: { DK_TOKEN: 'dk_not-a-token' } });
  const { code } = await bad.exited;
  assert.equal(code, 3, bad.err());
  assert.equal(bad.out(), '');
  assert.equal(bad.err().trim().split('\n').length, 1, bad.err());
  assert.match(bad.err(), /^dk: the gateway refused the session \(unauthorized\)/);
  // A target the agent's allowlist refuses: the gateway knows the allowlist and refuses it (exit 3, as for -L).
  const outside = connectArgs(echo.port);
  outside.splice(3, 0, '192.0.2.1');
  const refusedTarget = dk(outside, { stdin: 'pipe', env: { DK_TOKEN: ADMIN } });
  assert.equal((await refusedTarget.exited).code, 3, refusedTarget.err());
  assert.equal(refusedTarget.out(), '');
  assert.match(refusedTarget.err(), /^dk: the gateway refused the session \(refused_by_allowlist\): [^\n]*\n$/);
  // A --gateway-key the gateway does not hold: exit 6, and nothing was sent.
  const wrongKey = connectArgs(echo.port);
  wrongKey[wrongKey.indexOf('--gateway-key') + 1] = generateKeyPair().publicRaw.toString('base64url');
  const wk = dk(wrongKey, { stdin: 'pipe', env: { DK_TOKEN: ADMIN } });
  assert.equal((await wk.exited).code, 6, wk.err());
  assert.equal(wk.out(), '');
  assert.match(wk.err(), /^dk: the gateway at the far end does not hold the pinned --gateway-key: [^\n]*\n$/);
  // Neither -L nor --stdio (or both): a usage error.
  const neither = dk(connectArgs(echo.port).filter((a) => a !== '--stdio'), { env: { DK_TOKEN: ADMIN } });
  assert.equal((await neither.exited).code, 2);
  assert.match(neither.err(), /one of -L \[BIND:\]PORT .* and --stdio/);
});

/** An sshd on a loopback port with its own host key, taking one key made here; null (and why) where sshd cannot run. */
async function sshd(t: TestContext, dir: string): Promise<{ port: number; hostPub: string; clientKey: string; user: string } | string> {
  const SSHD = '/usr/sbin/sshd';
  if (!existsSync(SSHD)) return `${SSHD} is not installed (Debian: openssh-server; .ci/run installs it)`;
  if (spawnSync('ssh', ['-V']).error) return 'the ssh client is not installed (Debian: openssh-client; .ci/run installs it)';
  try {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client_key')]);
  } catch (e) {
    return `ssh-keygen failed: ${(e as Error).message}`;
  }
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')), { mode: 0o600 });
  const port = await freePort();
  const user = userInfo().username;
  writeFileSync(join(dir, 'sshd_config'), [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${join(dir, 'host_key')}`, `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    `PidFile ${join(dir, 'sshd.pid')}`, 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'StrictModes no',
    'PermitRootLogin prohibit-password', `AllowUsers ${user}`, 'LogLevel INFO', '',
  ].join('\n'));
  // Privilege separation wants this directory when sshd runs as root (Debian makes it at boot).
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const p = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (c: Buffer) => { err += c.toString(); });
  let exited = false;
  p.once('exit', () => { exited = true; });
  t.after(() => { p.kill('SIGTERM'); });
  try {
    await eventually(() => /Server listening/.test(err) || exited, 10_000, () => `sshd listening (${err})`);
  } catch {
    return `sshd did not start: ${err.trim() || 'no output'}`;
  }
  if (exited) return `sshd exited at start: ${err.trim()}`;
  return { port, hostPub: readFileSync(join(dir, 'host_key.pub'), 'utf8').trim(), clientKey: join(dir, 'client_key'), user };
}

test('ssh with the README ~/.ssh/config block (ProxyCommand dk connect … --stdio) runs a command on an sshd, and keeps an interactive session through link cuts', async (t) => {
  const dir = tempDir();
  const s = await sshd(t, dir);
  if (typeof s === 'string') {
    t.diagnostic(`skipped: ${s}`);
    t.skip(s);
    return;
  }
  const { proxy, gatewayKey } = await stack(t);
  // The README's ~/.ssh/config block, with this test's addresses, key files and known_hosts (so
  // ssh checks the sshd's real host key at the far end of the tunnel).
  writeFileSync(join(dir, 'known_hosts'), `home ${s.hostPub}\n`);
  const tokenFile = join(dir, 'dk-token');
  writeFileSync(tokenFile, `${ADMIN}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'ssh_config'), [
    'Host home',
    `    User ${s.user}`,
    `    ProxyCommand ${process.execPath} ${BIN} connect home ${s.port} --stdio --gateway 127.0.0.1:${proxy.port} --gateway-key ${gatewayKey} --token-file ${tokenFile}`,
    `    IdentityFile ${s.clientKey}`, '    IdentitiesOnly yes', `    UserKnownHostsFile ${join(dir, 'known_hosts')}`, '    StrictHostKeyChecking yes', '    BatchMode yes', '',
  ].join('\n'));
  const ssh = (cmd: string): Cli => {
    const p = spawn('ssh', ['-F', join(dir, 'ssh_config'), 'home', cmd], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let done = false;
    p.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    p.stderr.on('data', (c: Buffer) => { err += c.toString(); });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((resolve) => p.once('exit', (code, signal) => { done = true; resolve({ code, signal, ms: 0 }); }));
    return Object.assign(p, { out: () => out, err: () => err, exited, running: () => !done });
  };
  const procs: Cli[] = [];
  t.after(() => killAll(procs));

  // A command: its output comes back, and ssh exits with its status.
  const one = ssh('echo "hello from $(hostname)"; exit 7');
  procs.push(one);
  one.stdin!.end();
  const r1 = await one.exited;
  assert.equal(r1.code, 7, one.err());
  assert.match(one.out(), /^hello from /);

  // An interactive session (cat echoes each line) while the client's link is cut again and again.
  const cat = ssh('cat');
  procs.push(cat);
  let expected = '';
  for (let round = 0; round < 12; round++) {
    const line = `ssh line ${round} ${'z'.repeat(round * 211)}\n`;
    expected += line;
    cat.stdin!.write(line);
    await eventually(() => cat.out().length >= expected.length || !cat.running(), 20_000, () => `the echo of round ${round} (ssh stderr: ${cat.err()})`);
    assert.equal(cat.out(), expected, `round ${round}`);
    if (round % 3 === 1) proxy.inject('reset');
  }
  assert.ok(proxy.counts.reset >= 3, 'the link was cut');
  assert.ok(proxy.connections >= 2 + proxy.counts.reset, `the link came back through the proxy (${proxy.connections} connections)`);
  cat.stdin!.end();
  const r2 = await cat.exited;
  assert.equal(r2.code, 0, cat.err());
  assert.equal(cat.out(), expected);
  t.diagnostic(`ssh over dk connect --stdio: ${proxy.counts.reset} link cuts, ${proxy.connections} link connections, the ssh session held`);
});
