import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadAgentConfig, usesLink } from '../../src/config/agent-config.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { accessRange, loadGatewayConfig } from '../../src/config/gateway-config.ts';
import { tempDir } from '../helpers/stack.ts';

test('embedded defaults: the gateway runs with no file, no env, no flags', () => {
  const c = loadGatewayConfig({}, {});
  assert.equal(c.serv_port, 35357);
  assert.equal(c.mgmt_port, 3535);
  assert.equal(c.handshake, 10);
  assert.equal(c.idle_close, 600);
  assert.equal(c.auth_time, 3600);
  assert.equal(accessRange(c), '35358-36357');
});

test('precedence: flags over env over file', () => {
  const f = join(tempDir(), 'gw.yaml');
  writeFileSync(f, 'serv_port: 1000\nmgmt_port: 1001\nidle_close: 5\n');
  const c = loadGatewayConfig({ config: f, servPort: '3000' }, { DK_SERV_PORT: '2000', DK_MGMT_PORT: '2001' });
  assert.deepEqual([c.serv_port, c.mgmt_port, c.idle_close], [3000, 2001, 5]);
});

test('errors name the key and say why', () => {
  const f = join(tempDir(), 'bad.yaml');
  writeFileSync(f, 'serv_port: 70000\nidle_close: -1\nbackends:\n  home:\n    key: short\ntypo_key: 1\n');
  assert.throws(() => loadGatewayConfig({ config: f }, {}), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /serv_port: must be 0-65535/);
    assert.match(e.message, /idle_close: must be a positive number of seconds/);
    assert.match(e.message, /backends\.home\.key: backend keys must be at least 8 characters/);
    assert.match(e.message, /typo_key/);
    return true;
  });
  writeFileSync(f, 'serv_port: [unclosed\n');
  assert.throws(() => loadGatewayConfig({ config: f }, {}), /not valid YAML/);
  assert.throws(() => loadGatewayConfig({ backend: ['novalue'] }, {}), /expected NAME=KEY/);
  assert.throws(() => loadGatewayConfig({ config: '/nonexistent.yaml' }, {}), /cannot read config file/);
});

test('env booleans: "false" means false', () => {
  assert.equal(loadGatewayConfig({}, { DK_SEED_ONLY: 'false' }).seed_only, false);
  assert.equal(loadGatewayConfig({}, { DK_SEED_ONLY: '1' }).seed_only, true);
  assert.throws(() => loadGatewayConfig({}, { DK_SEED_ONLY: 'maybe' }), /seed_only: must be true or false/);
});

test('agent: --allow rules are validated; required keys are named', () => {
  const c = loadAgentConfig({ gateway: 'gw.example:35357', name: 'home', key: '12345678', plain: true, allow: ['192.168.1.0/24:22'] }, {});
  assert.deepEqual(c.lan_nets, ['192.168.1.0/24:22']);
  assert.throws(() => loadAgentConfig({ gateway: 'gw.example:35357', name: 'home', key: '12345678', plain: true, allow: ['192.168.1.0/24:99999'] }, {}), /lan_nets\.0/);
  assert.throws(() => loadAgentConfig({}, {}), (e: unknown) => e instanceof ConfigError && /gateway/.test(e.message) && /name/.test(e.message) && /key/.test(e.message));
  assert.deepEqual(loadAgentConfig({ gateway: '[::1]:35357', name: 'h', key: '12345678', plain: true }, {}).lan_nets, ['127.0.0.1/32', '::1/128'], 'default: only its own host');
  // The core flags keep working: without a pinned key the agent falls back to plain mode.
  const noKey = loadAgentConfig({ gateway: 'gw.example:35357', name: 'home', key: '12345678' }, {});
  assert.equal(usesLink(noKey), false);
  assert.equal(usesLink(loadAgentConfig({ gateway: 'gw.example:35357', name: 'home', key: '12345678', gatewayKey: 'A'.repeat(43) }, {})), true);
  assert.throws(() => loadAgentConfig({ gateway: 'gw.example:35357', name: 'home', key: '12345678', gatewayKey: 'short' }, {}), /gateway_key: must be the gateway's 43-character public key/);
  assert.equal(loadAgentConfig({ gateway: 'gw.example:35357', name: 'home', key: '12345678', gatewayKey: 'A'.repeat(43) }, {}).plain, false);
});

test('limits: defaults, and the environment sets them (DK_MAX_SESSIONS_PER_LINK, DK_MAX_SESSIONS, …)', () => {
  const g = loadGatewayConfig({}, {});
  assert.deepEqual([g.max_sessions_per_link, g.max_exposes_per_agent, g.max_pending_scans], [4096, 64, 16]);
  const g2 = loadGatewayConfig({}, { DK_MAX_SESSIONS_PER_LINK: '20000', DK_MAX_EXPOSES_PER_AGENT: '2', DK_MAX_PENDING_SCANS: '1' });
  assert.deepEqual([g2.max_sessions_per_link, g2.max_exposes_per_agent, g2.max_pending_scans], [20000, 2, 1]);
  const a = loadAgentConfig({ gateway: '127.0.0.1:1', name: 'n', key: 'key-12345678' }, {});
  assert.equal(a.max_sessions, 4096);
  assert.equal(loadAgentConfig({ gateway: '127.0.0.1:1', name: 'n', key: 'key-12345678' }, { DK_MAX_SESSIONS: '10' }).max_sessions, 10);
  assert.throws(() => loadGatewayConfig({}, { DK_MAX_SESSIONS_PER_LINK: '0' }), ConfigError);
});

test('relative paths in a config file are relative to the file; flags and env stay relative to the working directory', () => {
  const dir = tempDir();
  const f = join(dir, 'gw.yaml');
  writeFileSync(f, 'data_dir: ./state\n');
  assert.equal(loadGatewayConfig({ config: f }, {}).data_dir, join(dir, 'state'));
  writeFileSync(f, 'data_dir: /var/lib/dk\n');
  assert.equal(loadGatewayConfig({ config: f }, {}).data_dir, '/var/lib/dk', 'absolute stays');
  // Left out of a file, the default sits beside the file too; without a file, in the working directory.
  writeFileSync(f, 'serv_port: 4000\n');
  assert.equal(loadGatewayConfig({ config: f }, {}).data_dir, join(dir, 'dk-data'));
  assert.equal(loadGatewayConfig({ config: f }, { DK_DATA_DIR: 'rel' }).data_dir, 'rel', 'env: relative to the cwd');
  assert.equal(loadGatewayConfig({ config: f, dataDir: 'flag' }, {}).data_dir, 'flag', 'flag: relative to the cwd');
  assert.equal(loadGatewayConfig({}, {}).data_dir, './dk-data');
  assert.equal(loadGatewayConfig({}, { DK_CONFIG: f }).data_dir, join(dir, 'dk-data'), 'DK_CONFIG names the file as -c does');
});
