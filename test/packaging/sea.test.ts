import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { smokeGateway } from '../helpers/gateway-smoke.ts';
import { tempDir } from '../helpers/stack.ts';
import { STARTUP_FLAGS } from '../../src/util/process-tuning.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

test('the single executable (npm run sea) runs dk --version and a gateway with no Node, npm or checkout around it', async () => {
  const dir = tempDir();
  try {
    const dk = join(dir, 'dk');
    // What `npm run sea` runs, with another output file.
    execFileSync(process.execPath, [join(ROOT, 'packaging/sea/build.ts'), dk], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    assert.ok(statSync(dk).mode & 0o100, 'executable');
    // PATH without any node or npm, and a working directory outside the checkout.
    const env = { PATH: '/nonexistent', HOME: dir };
    assert.equal(execFileSync(dk, ['--version'], { cwd: dir, env, encoding: 'utf8' }).trim(), VERSION);
    const run = await smokeGateway(dk, env);
    assert.match(run.out, /^ {2}dk agent --gateway 127\.0\.0\.1:\d+ /m);
    // The gateway restarted itself with its Node flags, which a single executable reads only from
    // its first argument (src/util/process-tuning.ts); the user's arguments came through unchanged.
    assert.equal(run.cmdline[1], `--node-options=${STARTUP_FLAGS.join(' ')}`);
    assert.equal(run.cmdline[2], 'gateway');
    assert.doesNotMatch(run.err, /Warning/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
