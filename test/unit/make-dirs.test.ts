import assert from 'node:assert/strict';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeDirs } from '../../src/util/make-dirs.ts';
import { tempDir } from '../helpers/stack.ts';

test('makeDirs makes missing parents with the mode asked for, and accepts a directory that exists', () => {
  const root = tempDir();
  const deep = join(root, 'a', 'b', 'c');
  makeDirs(deep, 0o700);
  for (const d of [join(root, 'a'), join(root, 'a', 'b'), deep]) {
    assert.ok(statSync(d).isDirectory());
    assert.equal(statSync(d).mode & 0o777, 0o700 & ~process.umask());
  }
  makeDirs(deep);
});

test('makeDirs fails at once, with the errno, where Node\'s recursive mkdir loops for ever', () => {
  const file = join(tempDir(), 'f');
  writeFileSync(file, 'x');
  const cases: [string, string][] = [[file, 'EEXIST'], [join(file, 'x', 'y'), 'ENOTDIR'], ['/proc/x', 'ENOENT'], ['/proc/x/y/z', 'ENOENT']];
  for (const [dir, code] of cases) {
    const started = Date.now();
    assert.throws(() => makeDirs(dir), (e: NodeJS.ErrnoException) => e.code === code, dir);
    assert.ok(Date.now() - started < 1000, dir);
  }
});
