import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/stack.ts';
import { MALLOC_TUNABLES, STARTUP_FLAGS } from '../../src/util/process-tuning.ts';
import { dial, echoServer, readAll } from '../helpers/net.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

function run(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): ChildProcess & { out: () => string; err: () => string } {
  const p = spawn(process.execPath, [MAIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  p.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  p.stderr.on('data', (c: Buffer) => { err += c.toString(); });
  return Object.assign(p, { out: () => out, err: () => err });
}

/** The process (same PID after its restart) runs with process-tuning.ts's flags and tunables. */
function assertTuned(name: string, pid: number): void {
  if (typeof process.execve !== 'function' || !existsSync(`/proc/${pid}/environ`)) return;
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  for (const f of STARTUP_FLAGS) assert.ok(argv.includes(f), `${name}: ${f} in ${argv.join(' ')}`);
  // glibc rewrites the variable in place while it parses it, so /proc shows its first entry only
  // (test/unit/process-tuning.test.ts checks the whole value from inside a restarted process).
  const tunables = env.find((e) => e.startsWith('GLIBC_TUNABLES='));
  assert.ok(tunables?.includes(Object.keys(MALLOC_TUNABLES)[0]!), `${name}: ${tunables}`);
}

async function portFree(port: number): Promise<boolean> {
  const s = createServer();
  return new Promise((resolve) => {
    s.once('error', () => resolve(false));
    s.listen(port, '0.0.0.0', () => s.close(() => resolve(true)));
  });
}

/** A port nothing listens on now (the kernel's choice). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '0.0.0.0', resolve));
  const { port } = s.address() as { port: number };
  await new Promise((resolve) => s.close(resolve));
  return port;
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('quick start: `dk gateway` with no arguments prints secrets and commands that work as printed', async (t) => {
  // The embedded defaults are 35357/3535. Where another program holds them, the same start runs
  // with the two ports moved through the environment (DK_SERV_PORT/DK_MGMT_PORT; the banner then
  // prints those), so the flow is checked on every machine instead of being skipped.
  const env: NodeJS.ProcessEnv = {};
  if (!(await portFree(35357)) || !(await portFree(3535))) {
    env.DK_SERV_PORT = String(await freePort());
    env.DK_MGMT_PORT = String(await freePort());
    env.DK_API = `http://127.0.0.1:${env.DK_MGMT_PORT}`;
    t.diagnostic(`ports 35357/3535 are taken here: the gateway runs on ${env.DK_SERV_PORT}/${env.DK_MGMT_PORT} from the environment`);
  }
  const cwd = tempDir();
  const echo = await echoServer();
  const gw = run(['gateway'], cwd, env);
  const procs: ChildProcess[] = [gw];
  t.after(() => { for (const p of procs) p.kill('SIGTERM'); echo.server.close(); });
  await until(() => /ssh -p ACCESS_PORT/.test(gw.out()), 15_000, `the banner (stderr: ${gw.err()})`);
  const banner = gw.out();
  const token = /admin token\s+(\S+)/.exec(banner)?.[1];
  const agentCmd = /npm run dk -- (agent .*)/.exec(banner)?.[1];
  assert.ok(token?.startsWith('dk_'), banner);
  assert.ok(agentCmd, banner);
  // Run the agent exactly as printed.
  const ag = run(agentCmd.split(' '), cwd);
  procs.push(ag);
  await until(() => /connected to gateway/.test(ag.err()), 10_000, 'agent connected');
  // Then `dk access` as printed, for the echo server's port instead of 22.
  const accessCmd = /npm run dk -- (access .*)/.exec(banner)![1]!.replace(/ 22 /, ` ${echo.port} `).split(' ');
  const acc = run([...accessCmd, '--json'], cwd);
  const [code] = (await once(acc, 'exit')) as [number];
  assert.equal(code, 0, acc.err());
  const grant = JSON.parse(acc.out()) as { access_port: number };
  const s = await dial(grant.access_port);
  s.end('quick start works');
  assert.equal((await readAll(s)).data.toString(), 'quick start works');
  // And `dk connect` as printed: a local port over the encrypted link.
  const connectCmd = /npm run dk -- (connect .*)/.exec(banner)![1]!.replace(/ 22 /, ` ${echo.port} `).replace('-L 2222', '-L 127.0.0.1:0').split(' ');
  const fwd = run(connectCmd, cwd);
  procs.push(fwd);
  await until(() => /dk connect: 127\.0\.0\.1:\d+/.test(fwd.out()), 10_000, `dk connect listening (${fwd.err()})`);
  const localPort = Number(/dk connect: 127\.0\.0\.1:(\d+)/.exec(fwd.out())![1]);
  const c = await dial(localPort);
  c.end('over dk connect');
  assert.equal((await readAll(c)).data.toString(), 'over dk connect');
  // The three relaying processes restarted themselves with their Node flags and malloc settings.
  for (const [name, p] of [['gateway', gw], ['agent', ag], ['connect', fwd]] as const) assertTuned(name, p.pid!);
  // `dk pubkey` prints the key the banner showed.
  const pk = run(['pubkey', '--data-dir', `${cwd}/dk-data`], cwd);
  assert.equal(((await once(pk, 'exit')) as [number])[0], 0);
  assert.equal(pk.out().trim(), /link public key\s+(\S+)/.exec(banner)![1]);
  // Exit codes mean something: a wrong token is 3.
  const bad = run(['access', 'default', '22', '--token', 'dk_wrong'], cwd, env);
  assert.equal(((await once(bad, 'exit')) as [number])[0], 3);
  assert.match(bad.err(), /401/);
  // SIGTERM shuts the gateway down cleanly.
  gw.kill('SIGTERM');
  const [gwCode] = (await once(gw, 'exit')) as [number];
  assert.equal(gwCode, 0);
});

test('configuration errors exit with code 2 and name the key', async () => {
  const p = run(['gateway', '--serv-port', '99999'], tempDir());
  const [code] = (await once(p, 'exit')) as [number];
  assert.equal(code, 2);
  assert.match(p.err(), /serv_port: must be 0-65535/);
  const a = run(['agent'], tempDir());
  assert.equal(((await once(a, 'exit')) as [number])[0], 2);
  assert.match(a.err(), /gateway/);
});

test('dk init writes configs that load', async () => {
  const cwd = tempDir();
  const noKey = run(['init', 'agent'], cwd);
  assert.equal(((await once(noKey, 'exit')) as [number])[0], 2, 'an agent config needs the gateway\'s backend key');
  assert.match(noKey.err(), /backend key the gateway has/);
  const gw = run(['init', 'gateway', '--data-dir', 'gw-data'], cwd);
  assert.equal(((await once(gw, 'exit')) as [number])[0], 0, gw.err());
  const { loadGatewayConfig } = await import('../../src/config/gateway-config.ts');
  const { loadAgentConfig } = await import('../../src/config/agent-config.ts');
  const g = loadGatewayConfig({ config: `${cwd}/dk-gateway.yaml` }, {});
  const ag = run(['init', 'agent', '--data-dir', `${cwd}/gw-data`, '--key', g.backends.home!.key], cwd);
  assert.equal(((await once(ag, 'exit')) as [number])[0], 0, ag.err());
  const again = run(['init', 'agent', '--key', g.backends.home!.key, '--plain'], cwd);
  assert.equal(((await once(again, 'exit')) as [number])[0], 2, 'refuses to overwrite');
  const a = loadAgentConfig({ config: `${cwd}/dk-agent.yaml` }, {});
  assert.ok((g.backends.home?.key.length ?? 0) >= 16, 'a fresh backend key');
  assert.ok(g.admin_token?.startsWith('dk_'), 'a fresh admin token');
  assert.equal(a.name, 'home');
  assert.equal(a.key, g.backends.home?.key, 'the agent takes the key the gateway has');
  assert.equal(g.data_dir, `${cwd}/gw-data`, 'data_dir is relative to the gateway config');
  assert.equal(a.gateway_key, (await import('../../src/link/keys.ts')).loadOrCreateStaticKey(`${cwd}/gw-data`).publicRaw.toString('base64url'));
});
