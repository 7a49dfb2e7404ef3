import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/stack.ts';
import { dk, killAll } from '../helpers/cli.ts';

/**
 * Every start-up failure of the real `dk` is one line on stderr that says what to change, no stack
 * trace, exit code 2 (usage or configuration), within seconds: nothing hangs.
 */

const BOUND_MS = 15_000;
const LOOPBACK = ['--bind', '127.0.0.1', '--serv-port', '0', '--mgmt-port', '0'];

async function fails(args: string[], message: RegExp): Promise<void> {
  const p = dk(args, { cwd: tempDir() });
  const timer = setTimeout(() => p.kill('SIGKILL'), BOUND_MS);
  try {
    const { code, signal, ms } = await p.exited;
    assert.equal(signal, null, `dk ${args.join(' ')} was still running after ${BOUND_MS} ms`);
    assert.equal(code, 2, p.err());
    assert.ok(ms < BOUND_MS);
    const err = p.err();
    assert.doesNotMatch(err, /^ {4}at /m, 'no stack trace');
    assert.equal(err.trimEnd().split('\n').length, 1, `one line: ${err}`);
    assert.match(err, /^dk: /);
    assert.match(err, message);
    assert.equal(p.out(), '', 'nothing on stdout: no banner, no secrets');
  } finally {
    clearTimeout(timer);
    await killAll([p]);
  }
}

async function holdPort(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

test('a data dir that is a file', async () => {
  const file = join(tempDir(), 'not-a-dir');
  writeFileSync(file, 'x');
  await fails(['gateway', '--data-dir', file, ...LOOPBACK], /^dk: data_dir .*not-a-dir: it is a file, not a directory \(EEXIST\)/);
});

test('a data dir under a file (fails for root too)', async () => {
  const file = join(tempDir(), 'file');
  writeFileSync(file, 'x');
  await fails(['gateway', '--data-dir', `${file}/x`, ...LOOPBACK], /a part of that path is a file, not a directory \(ENOTDIR\)/);
  await fails(['gateway', '--data-dir', '/etc/passwd/x', ...LOOPBACK], /data_dir \/etc\/passwd\/x: a part of that path is a file/);
});

test('a data dir in /proc: fails at once (Node\'s recursive mkdir spun for ever there)', async () => {
  await fails(['gateway', '--data-dir', '/proc/x', ...LOOPBACK], /data_dir \/proc\/x: that place does not accept new files or directories .*\(ENOENT\)/);
  await fails(['pubkey', '--data-dir', '/proc/x'], /data_dir \/proc\/x: that place does not accept new files or directories .*\(ENOENT\)/);
});

test('an existing data dir nobody may write, not even root', async () => {
  await fails(['gateway', '--data-dir', '/proc/1', ...LOOPBACK], /data_dir \/proc\/1: .*\(ENOENT\).*a directory this user can write/);
});

test('--bind to an address this host does not have (TEST-NET-1: nothing is sent)', async () => {
  await fails(['gateway', '--data-dir', join(tempDir(), 'd'), '--bind', '192.0.2.1', '--serv-port', '0', '--mgmt-port', '0'],
    /^dk: bind 192\.0\.2\.1: this host has no such address/);
});

for (const which of ['serv', 'mgmt'] as const) {
  test(`${which}_port in use: exit 2, and no state or first-run secret was made`, async () => {
    const held = await holdPort();
    try {
      const dir = join(tempDir(), 'd');
      const ports = which === 'serv' ? ['--serv-port', String(held.port), '--mgmt-port', '0'] : ['--serv-port', '0', '--mgmt-port', String(held.port)];
      await fails(['gateway', '--data-dir', dir, '--bind', '127.0.0.1', ...ports],
        new RegExp(`^dk: ${which}_port ${held.port}: 127\\.0\\.0\\.1:${held.port} is already in use by another program; pick another port with --${which}-port`));
      assert.equal(existsSync(dir), false, 'the data dir was not created');
    } finally {
      held.server.close();
    }
  });
}

test('unknown commands and options, and missing required options, are usage errors', async () => {
  await fails(['frobnicate'], /^dk: unknown command 'frobnicate' \(run with --help for usage\)$/m);
  await fails(['gateway', '--frob'], /^dk: unknown option '--frob'/);
  await fails(['agent', '--frob'], /^dk: unknown option '--frob'/);
  await fails(['connect', 'home', '22', '-L', '0'], /^dk: required option '--gateway <host:port>' not specified/);
});

test('--help and --version still exit 0', async () => {
  for (const args of [['--help'], ['--version'], ['gateway', '--help']]) {
    const p = dk(args);
    const { code } = await p.exited;
    assert.equal(code, 0, `dk ${args.join(' ')}: ${p.err()}`);
    assert.ok(p.out().length > 0);
  }
});
