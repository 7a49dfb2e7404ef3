// `npm run sea [-- OUT]`: builds the single-file `dk` executable (default dist-sea/dk) with Node's
// single executable applications: the CLI and its dependencies bundled into one CommonJS script
// (the only format Node 24 runs there), packed into a preparation blob by this very Node, and
// injected into a copy of this Node's binary. The result runs on machines like this one (same OS
// and CPU architecture, glibc Linux here) with no Node, npm or checkout. docs/operations.md.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Node's documented sentinel: postject flips it so the binary knows a blob is inside. */
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

const out = resolve(process.argv[2] ?? join(ROOT, 'dist-sea/dk'));
const work = mkdtempSync(join(tmpdir(), 'dk-sea-'));
try {
  const script = join(work, 'dk.cjs');
  await build({
    entryPoints: [join(ROOT, 'src/cli/main.ts')],
    outfile: script,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: `node${process.versions.node}`,
    logLevel: 'warning',
    // src/util/version.ts reads import.meta.url only outside a single executable (there it reads
    // the package.json asset below), so CommonJS leaving it empty does not matter.
    logOverride: { 'empty-import-meta': 'silent' },
  });
  const blob = join(work, 'dk.blob');
  const config = {
    main: script,
    output: blob,
    disableExperimentalSEAWarning: true,
    // Lets the relaying commands restart themselves with their Node flags (src/util/process-tuning.ts):
    // a single executable reads Node options only from a first `--node-options=…` argument.
    execArgvExtension: 'cli',
    assets: { 'package.json': join(ROOT, 'package.json') },
  };
  writeFileSync(join(work, 'sea-config.json'), JSON.stringify(config));
  execFileSync(process.execPath, ['--experimental-sea-config', join(work, 'sea-config.json')], { stdio: 'pipe' });
  // Written beside the target and renamed over it, so a running dk there is not disturbed.
  mkdirSync(dirname(out), { recursive: true });
  const next = `${out}.tmp-${process.pid}`;
  copyFileSync(process.execPath, next);
  const postject = createRequire(import.meta.url).resolve('postject/dist/cli.js');
  execFileSync(process.execPath, [postject, next, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE], { stdio: 'pipe' });
  chmodSync(next, 0o755);
  renameSync(next, out);
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  process.stdout.write(`wrote ${out} (dk ${version} on Node ${process.version}, ${(statSync(out).size / 2 ** 20).toFixed(0)} MiB)\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
