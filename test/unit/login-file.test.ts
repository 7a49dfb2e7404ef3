import assert from 'node:assert/strict';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/config/errors.ts';
import { loginPath, readLogin, removeLogin, sameApi, writeLogin } from '../../src/cli/login-file.ts';
import { tempDir } from '../helpers/stack.ts';

test('loginPath: $XDG_CONFIG_HOME when absolute (the XDG rule), else ~/.config', () => {
  assert.equal(loginPath({ XDG_CONFIG_HOME: '/x/cfg', HOME: '/home/u' }), '/x/cfg/doorkeeper/credentials.json');
  assert.equal(loginPath({ XDG_CONFIG_HOME: 'relative/cfg', HOME: '/home/u' }), '/home/u/.config/doorkeeper/credentials.json');
  assert.equal(loginPath({ HOME: '/home/u' }), '/home/u/.config/doorkeeper/credentials.json');
});

test('writeLogin: mode 0600 whatever the umask, in a 0700 directory; readLogin gives it back; removeLogin removes it', () => {
  const path = join(tempDir(), 'cfg', 'doorkeeper', 'credentials.json');
  const old = process.umask(0);
  try {
    writeLogin(path, { api: 'https://gw.example.net:3535', token: 'dk_abc', fingerprint: 'AB:CD' });
  } finally {
    process.umask(old);
  }
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.equal(statSync(join(path, '..')).mode & 0o777, 0o700);
  const warnings: string[] = [];
  const got = readLogin(path, (w) => warnings.push(w));
  assert.equal(got?.api, 'https://gw.example.net:3535');
  assert.equal(got?.token, 'dk_abc');
  assert.equal(got?.fingerprint, 'AB:CD');
  assert.deepEqual(warnings, []);
  // Written again over the old one (rename), still 0600.
  writeLogin(path, { api: 'http://127.0.0.1:3535', token: 'dk_def' });
  assert.equal(readLogin(path, () => undefined)?.fingerprint, undefined);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.equal(removeLogin(path), true);
  assert.equal(removeLogin(path), false);
  assert.equal(readLogin(path, () => undefined), null);
});

test('readLogin: a file that is not a login is a configuration error that says what to do', () => {
  const dir = tempDir();
  const cases: [string, RegExp][] = [
    ['not json', /not JSON; run dk logout/],
    ['{"version":1,"api":"http://x:1"}', /token: .*run dk logout, then dk login again/],
    ['{"version":2,"api":"http://x:1","token":"t"}', /version/],
    ['x'.repeat(20_000), /is not a dk login file/],
  ];
  for (const [i, [text, re]] of cases.entries()) {
    const p = join(dir, `c${i}.json`);
    writeFileSync(p, text, { mode: 0o600 });
    assert.throws(() => readLogin(p, () => undefined), (e: Error) => e instanceof ConfigError && re.test(e.message), text.slice(0, 40));
  }
  mkdirSync(join(dir, 'adir'));
  assert.throws(() => readLogin(join(dir, 'adir'), () => undefined), /not a file/);
  assert.equal(sameApi('http://a:1/', 'http://a:1'), true);
  assert.equal(sameApi('http://a:1', 'http://a:2'), false);
});
