import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/config/errors.ts';
import { loadAgentConfig } from '../../src/config/agent-config.ts';
import { loadGatewayConfig } from '../../src/config/gateway-config.ts';
import { readSecretFile } from '../../src/config/secret-file.ts';
import { tempDir } from '../helpers/stack.ts';

function secretFile(text: string, mode = 0o600): string {
  const f = join(tempDir(), 'secret');
  writeFileSync(f, text);
  chmodSync(f, mode);
  return f;
}

test('a secret file is read whole, less its trailing line ending; a private file draws no warning', () => {
  const warnings: string[] = [];
  assert.equal(readSecretFile(secretFile('s3cret-key  x\n'), '--key-file', (w) => warnings.push(w)), 's3cret-key  x');
  assert.equal(readSecretFile(secretFile('s3cret\r\n'), '--key-file', (w) => warnings.push(w)), 's3cret');
  assert.equal(readSecretFile(secretFile('s3cret'), '--key-file', (w) => warnings.push(w)), 's3cret');
  assert.deepEqual(warnings, []);
});

test('a secret file others may read is read, with one warning that says how to fix it', () => {
  for (const [mode, who] of [[0o644, /its group and every local user/], [0o640, /readable by its group \(mode 640\)/], [0o604, /readable by every local user \(mode 604\)/]] as const) {
    const warnings: string[] = [];
    const f = secretFile('k\n', mode);
    assert.equal(readSecretFile(f, '--key-file', (w) => warnings.push(w)), 'k');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, who);
    assert.ok(warnings[0]!.endsWith(`chmod 600 ${f}`), warnings[0]);
  }
});

test('a missing, empty or multi-line secret file is a ConfigError naming the flag', () => {
  const none = (): void => undefined;
  const cases: [string, RegExp][] = [
    [join(tempDir(), 'absent'), /--key-file .*absent: cannot read it: ENOENT/],
    [secretFile(''), /--key-file .*: the file is empty/],
    [secretFile('\n\n'), /the file is empty/],
    [secretFile('one\ntwo\n'), /more than one line/],
    [tempDir(), /cannot read it: EISDIR/],
  ];
  for (const [path, re] of cases) {
    assert.throws(() => readSecretFile(path, '--key-file', none), (e: unknown) => e instanceof ConfigError && re.test(e.message));
  }
});

test('the loaders take secrets from files and from DK_KEY / DK_ADMIN_TOKEN, and refuse a flag and its file together', () => {
  const key = secretFile('agent-key-from-file\n');
  const base = { gateway: '127.0.0.1:1', name: 'home', plain: true };
  assert.equal(loadAgentConfig({ ...base, keyFile: key }, {}).key, 'agent-key-from-file');
  assert.equal(loadAgentConfig(base, { DK_KEY: 'agent-key-from-env' }).key, 'agent-key-from-env');
  assert.equal(loadAgentConfig({ ...base, keyFile: key }, { DK_KEY: 'agent-key-from-env' }).key, 'agent-key-from-file', 'a flag beats the environment');
  assert.throws(() => loadAgentConfig({ ...base, key: 'agent-key-on-cli', keyFile: key }, {}), /give --key or --key-file, not both/);
  const token = secretFile('admin-token-from-file-0123456789\n');
  assert.equal(loadGatewayConfig({ adminTokenFile: token }, {}).admin_token, 'admin-token-from-file-0123456789');
  assert.equal(loadGatewayConfig({}, { DK_ADMIN_TOKEN: 'admin-token-from-env-0123456789' }).admin_token, 'admin-token-from-env-0123456789');
  assert.throws(() => loadGatewayConfig({ adminToken: 'admin-token-on-cli-0123456789', adminTokenFile: token }, {}), /give --admin-token or --admin-token-file, not both/);
  const g = loadGatewayConfig({ backendFile: [`home=${key}`], backend: ['lab=lab-key-on-cli'] }, {});
  assert.deepEqual(Object.fromEntries(Object.entries(g.backends).map(([n, b]) => [n, b.key])), { lab: 'lab-key-on-cli', home: 'agent-key-from-file' });
  assert.throws(() => loadGatewayConfig({ backendFile: ['home'] }, {}), /--backend-file home: expected NAME=FILE/);
});
