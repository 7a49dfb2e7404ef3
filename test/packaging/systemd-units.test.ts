import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/stack.ts';

const UNITS = fileURLToPath(new URL('../../packaging/systemd/', import.meta.url));
const analyze = spawnSync('systemd-analyze', ['--version']).status === 0;
const skip = !analyze && 'systemd-analyze is not installed (.ci/run installs the systemd package)';

/** The unit's [Service] settings, each key with every value it is given. */
function settings(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (kv) m.set(kv[1]!, [...(m.get(kv[1]!) ?? []), kv[2]!]);
  }
  return m;
}

for (const [unit, role] of [['dk-gateway.service', 'gateway'], ['dk-agent.service', 'agent']] as const) {
  test(`${unit}: sandboxed (dynamic user, no privileges, read-only system), restarts always, config as a credential`, () => {
    const s = settings(readFileSync(join(UNITS, unit), 'utf8'));
    for (const [k, v] of Object.entries({
      DynamicUser: 'yes', Restart: 'always', NoNewPrivileges: 'yes', ProtectSystem: 'strict', ProtectHome: 'yes',
      PrivateTmp: 'yes', PrivateDevices: 'yes', CapabilityBoundingSet: '', UMask: '0077',
    })) assert.deepEqual(s.get(k), [v], k);
    assert.deepEqual(s.get('LoadCredential'), [`${role}.yaml:/etc/doorkeeper/${role}.yaml`]);
    assert.match(s.get('ExecStart')![0]!, new RegExp(`^/usr/local/bin/dk ${role} --config %d/${role}\\.yaml( |$)`));
    // A configuration error (exit 2) is not retried (docs/errors.md).
    assert.ok(s.get('RestartPreventExitStatus')![0]!.split(' ').includes('2'));
    // Each keeps its keys in its own state directory (the agent: its end-to-end link key).
    const state = role === 'gateway' ? 'doorkeeper' : 'dk-agent';
    assert.deepEqual(s.get('StateDirectory'), [state]);
    assert.match(s.get('ExecStart')![0]!, new RegExp(` --data-dir %S/${state}$`));
  });

  test(`${unit}: systemd-analyze verify finds nothing, and its offline security review rates it at most 2.0`, { skip }, () => {
    // verify insists that ExecStart's program exists: point it at one that does.
    const dir = tempDir();
    const file = join(dir, unit);
    writeFileSync(file, readFileSync(join(UNITS, unit), 'utf8').replace(/\/usr\/local\/bin\/dk /g, `${process.execPath} `));
    const v = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stderr.trim(), '', 'no warnings (an unknown or misspelt key is only a warning)');
    const sec = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', file], { encoding: 'utf8' });
    const level = /Overall exposure level for \S+: (\d+\.\d+)/.exec(sec.stdout);
    assert.ok(level, `${sec.stdout}${sec.stderr}`);
    assert.ok(Number(level[1]) <= 2.0, `exposure ${level[1]}`);
  });
}
