import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { oldNode } from '../helpers/old-node.ts';
import { tempDir } from '../helpers/stack.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

test('bin/dk.js runs the sources in a checkout even when a dist/ is there, and dist/ only where there are no sources', () => {
  const dir = tempDir();
  mkdirSync(join(dir, 'bin'));
  copyFileSync(join(ROOT, 'bin/dk.js'), join(dir, 'bin/dk.js'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  for (const [folder, ext] of [['src', 'ts'], ['dist', 'js']] as const) {
    mkdirSync(join(dir, folder, 'cli'), { recursive: true });
    writeFileSync(join(dir, folder, 'cli', `main.${ext}`), `console.log('ran ${folder}');\n`);
  }
  const run = (): string => execFileSync(process.execPath, [join(dir, 'bin/dk.js'), 'version'], { encoding: 'utf8' }).trim();
  assert.equal(run(), 'ran src', 'a checkout with a stale build runs its sources');
  rmSync(join(dir, 'src'), { recursive: true });
  assert.equal(run(), 'ran dist', 'an installed package runs its build');
});

test('dk --version prints the version in package.json', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const out = execFileSync(process.execPath, [join(ROOT, 'bin/dk.js'), '--version'], { encoding: 'utf8' }).trim();
  assert.equal(out, pkg.version);
});

const old = oldNode();
test('on a Node too old for the sources, bin/dk.js in a checkout says so in one line and exits 2', { skip: !old && 'no Node older than 22.13 on this machine' }, () => {
  const r = spawnSync(old!, [join(ROOT, 'bin/dk.js'), '--version'], { encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^dk: needs Node\.js 22\.18 or newer, and .+ is v\d+\.\d+\.\d+: run it as `npm run dk -- …`, which uses the Node 24 that `npm ci` installed\n$/);
});
