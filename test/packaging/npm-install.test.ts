import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { smokeGateway } from '../helpers/gateway-smoke.ts';
import { oldNode } from '../helpers/old-node.ts';
import { tempDir } from '../helpers/stack.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** This environment without what `npm test` exports to its scripts, so the npm runs below are a user's. */
function userEnv(path: string): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k))), PATH: path };
}

test('npm pack, then npm install -g into a fresh prefix: dk runs from it with no checkout and no TypeScript, and an older Node gets one clear line', async (t) => {
  const dir = tempDir();
  try {
    // Node 24 (this test's) first on PATH, as for a user who installed it.
    const env = userEnv([dirname(process.execPath), process.env.PATH].join(delimiter));
    // `npm pack` builds dist/ first (the prepack script).
    const tarball = execFileSync('npm', ['pack', '--pack-destination', dir, '--silent'], { cwd: ROOT, env, encoding: 'utf8' }).trim().split('\n').pop()!;
    const prefix = join(dir, 'prefix');
    // The registry answers, but the npm cache that `npm ci` filled is tried first.
    execFileSync('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', join(dir, tarball)], { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });

    const pkg = join(prefix, 'lib/node_modules/doorkeeper');
    assert.equal(existsSync(join(pkg, 'src')), false, 'no sources in the package');
    assert.deepEqual(readdirSync(join(pkg, 'dist'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), []);
    assert.equal(existsSync(join(pkg, 'node_modules/typescript')) || existsSync(join(prefix, 'lib/node_modules/typescript')), false, 'no TypeScript installed');
    assert.ok(existsSync(join(pkg, 'packaging/systemd/dk-gateway.service')), 'the systemd units ship in the package');

    // Every module loads from the installed package alone: no import of a dev dependency or of a
    // file left out of the package (cli/main.js runs the CLI, so the runs below load it).
    const load = `import { readdirSync } from 'node:fs';
      for (const f of readdirSync('dist', { recursive: true, encoding: 'utf8' })) if (f.endsWith('.js') && f !== 'cli/main.js') await import('./dist/' + f);`;
    execFileSync(process.execPath, ['--input-type=module', '-e', load], { cwd: pkg, env, stdio: ['ignore', 'ignore', 'pipe'] });

    const dk = join(prefix, 'bin/dk');
    // Run from another directory: nothing may be looked up relative to the current one.
    assert.equal(execFileSync(dk, ['--version'], { cwd: dir, env, encoding: 'utf8' }).trim(), VERSION);
    const run = await smokeGateway(dk, env);
    // The first-start banner tells an installed package's user to run `dk`, not `npm run dk --`.
    assert.match(run.out, /^ {2}dk agent --gateway 127\.0\.0\.1:\d+ /m);
    assert.doesNotMatch(run.out, /npm run dk/);

    const old = oldNode();
    if (!old) {
      t.skip('no Node older than 22.13 on this machine: the old-Node message is not checked');
      return;
    }
    t.diagnostic(`old Node: ${old}`);
    const r = spawnSync(old, [join(pkg, 'bin/dk.js'), '--version'], { cwd: dir, env, encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^dk: needs Node\.js 22\.13 or newer, and .+ is v\d+\.\d+\.\d+: install a newer Node\.js, or use the single-file dk \(docs\/operations\.md\)\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
