import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/stack.ts';
import { MALLOC_TUNABLES, restartArgv, restartPlan, STARTUP_FLAGS } from '../../src/util/process-tuning.ts';

const ours = Object.entries(MALLOC_TUNABLES).map(([k, v]) => `${k}=${v}`);

test('restart plan: a bare process gets the start-up flags and the malloc tunables, and the restarted one needs nothing more', () => {
  const plan = restartPlan(['--cpu-prof'], { PATH: '/bin' });
  assert.ok(plan);
  assert.deepEqual(plan.execArgv, [...STARTUP_FLAGS, '--cpu-prof']);
  assert.equal(plan.env.GLIBC_TUNABLES, ours.join(':'));
  assert.equal(plan.env.PATH, '/bin');
  // No second restart: applying the plan reaches a fixed point.
  assert.equal(restartPlan(plan.execArgv, plan.env), null);
});

test('restart plan: what the user set is kept as given, and only the rest is added', () => {
  const plan = restartPlan(['--max_semi_space_size=16'], { GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=131072:glibc.malloc.arena_max=2' });
  assert.ok(plan);
  assert.deepEqual(plan.execArgv, [...STARTUP_FLAGS.filter((f) => !f.startsWith('--max-semi-space-size')), '--max_semi_space_size=16']);
  assert.equal(plan.env.GLIBC_TUNABLES, `glibc.malloc.trim_threshold=131072:glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=${MALLOC_TUNABLES['glibc.malloc.mmap_threshold']}`);
  assert.equal(restartPlan([...STARTUP_FLAGS], { GLIBC_TUNABLES: plan.env.GLIBC_TUNABLES }), null);
});

test('restart plan: DK_TUNING=off asks for nothing', () => {
  assert.equal(restartPlan([], { DK_TUNING: 'off' }), null);
});

test('restart argv: node gets the flags before the script; a single executable gets them in one --node-options argument', () => {
  assert.deepEqual(restartArgv(['--a', '--b=1'], '/usr/bin/node', ['/usr/bin/node', '/x/dk.js', 'gateway', '-c', 'f y'], false),
    ['/usr/bin/node', '--a', '--b=1', '/x/dk.js', 'gateway', '-c', 'f y']);
  // A single executable's argv is [its path, the name it was started as, its arguments…].
  assert.deepEqual(restartArgv(['--a', '--dir=/p q', 'x"\\'], '/opt/dk', ['/opt/dk', './dk', 'gateway', 'f y'], true),
    ['./dk', '--node-options=--a "--dir=/p q" "x\\"\\\\"', 'gateway', 'f y']);
});

test('tuneProcessForRelaying restarts a process once, in place, with the settings in force', { skip: typeof process.execve !== 'function' && `process.execve is missing in Node ${process.version}` }, async () => {
  const mod = fileURLToPath(new URL('../../src/util/process-tuning.ts', import.meta.url));
  const file = join(tempDir(), 'tuned.mjs');
  writeFileSync(file, `import { tuneProcessForRelaying } from ${JSON.stringify(mod)};
    process.stdout.write('start ' + process.pid + '\\n');
    tuneProcessForRelaying();
    process.stdout.write(JSON.stringify({ pid: process.pid, execArgv: process.execArgv, tunables: process.env.GLIBC_TUNABLES, argv: process.argv.slice(2) }) + '\\n');`);
  const env = { ...process.env };
  delete env.GLIBC_TUNABLES;
  const p = spawn(process.execPath, [file, 'a b', 'c'], { stdio: ['ignore', 'pipe', 'inherit'], env });
  let out = '';
  p.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  const [code] = (await once(p, 'exit')) as [number];
  assert.equal(code, 0);
  const lines = out.trim().split('\n');
  // It ran from the start twice (once before the restart, once after), as one PID, and then went on.
  assert.deepEqual(lines.slice(0, 2), [`start ${p.pid}`, `start ${p.pid}`]);
  const after = JSON.parse(lines[2]!) as { pid: number; execArgv: string[]; tunables: string; argv: string[] };
  assert.equal(after.pid, p.pid);
  for (const f of STARTUP_FLAGS) assert.ok(after.execArgv.includes(f), `${f} in ${after.execArgv.join(' ')}`);
  assert.equal(after.tunables, ours.join(':'));
  assert.deepEqual(after.argv, ['a b', 'c']);
  assert.equal(lines.length, 3);
});
