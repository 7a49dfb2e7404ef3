import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { test } from 'node:test';

const root = join(import.meta.dirname, '..', '..');
const committed = join(root, 'src', 'rendezvous', 'gen');
const buf = join(root, 'node_modules', '.bin', 'buf');

test('src/rendezvous/gen is what `npm run proto` makes from src/rendezvous/proto (no drift)', { skip: !existsSync(buf) && 'buf is not installed' }, () => {
  const out = mkdtempSync(join(tmpdir(), 'dk-proto-'));
  try {
    // protoc-gen-es is a node script found on PATH, as under `npm run`.
    const PATH = [join(root, 'node_modules', '.bin'), dirname(process.execPath), process.env.PATH ?? ''].join(delimiter);
    const r = spawnSync(buf, ['generate', '--template', 'buf.gen.yaml', '--output', out], { cwd: root, env: { ...process.env, PATH }, encoding: 'utf8' });
    assert.equal(r.status, 0, `buf generate failed: ${r.error?.message ?? ''}${r.stderr}`);
    const fresh = join(out, 'src', 'rendezvous', 'gen');
    const names = readdirSync(committed).sort();
    assert.deepEqual(readdirSync(fresh).sort(), names, 'the generated files differ from the committed ones: run `npm run proto`');
    for (const name of names) {
      assert.equal(readFileSync(join(committed, name), 'utf8'), readFileSync(join(fresh, name), 'utf8'), `${name} is stale: run \`npm run proto\` and commit`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
