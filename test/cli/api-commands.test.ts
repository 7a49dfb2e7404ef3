import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { dk, eventually, killAll } from '../helpers/cli.ts';
import { dial, echoServer, readAll } from '../helpers/net.ts';
import { ADMIN, agent, gateway, online, tempDir } from '../helpers/stack.ts';

/**
 * The API commands as a user runs them: `dk login` once, then `dk grants`, `dk revoke`,
 * `dk sessions`, `dk kill`, `dk backends`, `dk audit` and `dk users` with the stored login, against
 * a live gateway and agent; --json parsed and checked, the readable tables checked for alignment.
 */

type Json = Record<string, any>;

async function stack(t: { after(f: () => unknown): void }) {
  const gw = await gateway();
  const ag = await agent(gw.servPort);
  await online(gw);
  const echo = await echoServer();
  const home = tempDir();
  // A clean environment: no DK_API/DK_TOKEN from outside, and the login file in a fresh config dir.
  const env: Record<string, string> = { XDG_CONFIG_HOME: join(home, 'config'), HOME: home, DK_API: '', DK_TOKEN: '' };
  t.after(async () => { echo.server.close(); await ag.stop(); await gw.cleanup(); });
  /** Runs `dk ARGS…` to its end; returns exit code, stdout and stderr. */
  const run = async (args: string[], more: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> => {
    const e = { ...env, ...more };
    for (const k of ['DK_API', 'DK_TOKEN']) if (e[k] === '') delete e[k];
    const p = dk(args, { cwd: home, env: e });
    t.after(() => killAll([p]));
    const { code } = await p.exited;
    return { code, out: p.out(), err: p.err() };
  };
  const json = async (args: string[], more: Record<string, string> = {}): Promise<Json> => {
    const r = await run([...args, '--json'], more);
    assert.equal(r.code, 0, `dk ${args.join(' ')}: ${r.err}`);
    return JSON.parse(r.out) as Json;
  };
  return { gw, echo, home, env, run, json, credsFile: join(home, 'config', 'doorkeeper', 'credentials.json') };
}

/** The header's columns start where each row's cells start: the table is aligned. */
function assertAligned(out: string, firstColumnValue: string): string[] {
  const lines = out.trimEnd().split('\n');
  assert.ok(lines.length >= 2, out);
  const header = lines[0]!;
  const starts = [...header.matchAll(/(?:^|\s{2})(\S)/g)].map((m) => m.index + m[0].length - 1);
  const row = lines.find((l) => l.startsWith(firstColumnValue));
  assert.ok(row, `a row for ${firstColumnValue} in\n${out}`);
  for (const s of starts.slice(1)) assert.ok(row[s - 1] === ' ' && row[s] !== ' ', `column at ${s} aligned in\n${out}`);
  return row.split(/\s{2,}/);
}

// Environment variables in test processes must not leak into the spawned CLI.
delete process.env.DK_API;
delete process.env.DK_TOKEN;

test('dk login stores the API address and token (mode 0600); grants, sessions, kill and revoke use it; --json parses', async (t) => {
  const { gw, echo, home, run, json, credsFile } = await stack(t);

  // Without a login or a token: refused before any request, with what to do.
  const none = await run(['grants', '--api', gw.api]);
  assert.equal(none.code, 3);
  assert.match(none.err, /^dk: no credentials for .*dk login/);

  // A wrong token is not stored.
  const wrong = await run(['login', '--api', gw.api, '--token', 'dk_wrong']);
  assert.equal(wrong.code, 3, wrong.err);
  assert.equal(existsSync(credsFile), false);

  // The right one, from a file, is checked and stored: mode 0600 in a 0700 directory.
  const tokenFile = join(home, 'token');
  writeFileSync(tokenFile, `${ADMIN}\n`, { mode: 0o600 });
  const login = await run(['login', '--api', gw.api, '--token-file', tokenFile]);
  assert.equal(login.code, 0, login.err);
  assert.match(login.out, /logged in to http:\/\/127\.0\.0\.1:\d+ \(the token sees 1 backend\)/);
  assert.equal(statSync(credsFile).mode & 0o777, 0o600);
  assert.equal(statSync(join(home, 'config', 'doorkeeper')).mode & 0o777, 0o700);
  const stored = JSON.parse(readFileSync(credsFile, 'utf8')) as Json;
  assert.equal(stored.api, gw.api);
  assert.equal(stored.token, ADMIN);
  assert.equal(stored.version, 1);

  // Everything below runs with no --api and no --token.
  const backends = await json(['backends']);
  assert.deepEqual(backends.backends.map((b: Json) => [b.name, b.online]), [['home', true]]);
  const access = await json(['access', 'home', String(echo.port)]);
  assert.equal(typeof access.grant_id, 'string');

  const grants = await json(['grants']);
  assert.equal(grants.grants.length, 1);
  assert.equal(grants.grants[0].grant_id, access.grant_id);
  assert.equal(grants.grants[0].access_port, access.access_port);
  const gTable = await run(['grants']);
  assert.equal(gTable.code, 0, gTable.err);
  assert.match(gTable.out, /^GRANT\s+USER\s+CLIENT\s+ACCESS PORT\s+TARGET\s+SESSIONS\s+IDLE CLOSE\s+EXPIRES\n/);
  const gRow = assertAligned(gTable.out, access.grant_id as string);
  assert.deepEqual(gRow.slice(0, 5), [access.grant_id, 'admin', '127.0.0.1', String(access.access_port), `home 127.0.0.1:${echo.port}`]);
  assert.match(gRow[6]!, /^in \d+m\d\ds$/);

  // A live connection through the access port is a session; dk kill closes it.
  const conn = await dial(access.access_port as number);
  conn.write('ping');
  const gotPing = new Promise<void>((resolve) => conn.once('data', () => resolve()));
  await gotPing;
  const ended = readAll(conn, 15_000);
  let sessions: Json = {};
  await eventually(async () => { sessions = await json(['sessions']); return sessions.sessions.length === 1; }, 10_000, () => JSON.stringify(sessions));
  const session = sessions.sessions[0] as Json;
  assert.equal(session.grant_id, access.grant_id);
  assert.equal(session.kind, 'grant');
  assert.equal(session.bytes_up, 4);
  const sTable = await run(['sessions']);
  assert.match(sTable.out, /^SESSION\s+KIND\s+USER\s+CLIENT\s+TARGET\s+STARTED\s+UP\s+DOWN\n/);
  const sRow = assertAligned(sTable.out, session.id as string);
  assert.deepEqual([sRow[1], sRow[2], sRow[6], sRow[7]], ['grant', 'admin', '4 B', '4 B']);

  const kill = await json(['kill', session.id as string]);
  assert.equal(kill.killed.id, session.id);
  await ended;
  assert.equal(conn.destroyed || conn.readableEnded, true, 'the killed connection is closed');
  assert.deepEqual((await json(['sessions'])).sessions, []);
  assert.equal((await run(['sessions'])).out, 'no live sessions\n');
  const again = await run(['kill', session.id as string]);
  assert.equal(again.code, 4, 'a session that is gone is an API error (404)');
  assert.match(again.err, /^dk: 404: .*session/);

  // dk revoke ends the grant: it is gone from dk grants and its port takes nobody.
  const revoke = await run(['revoke', access.grant_id as string]);
  assert.equal(revoke.code, 0, revoke.err);
  assert.match(revoke.out, new RegExp(`^revoked grant ${access.grant_id as string}: 127\\.0\\.0\\.1 on access port ${access.access_port as number} `));
  assert.deepEqual((await json(['grants'])).grants, []);
  assert.equal((await run(['grants'])).out, 'no grants in force\n');
  assert.equal(gw.gateway.grants.all().length, 0);

  // dk audit shows the grant and the session with its bytes.
  const audit = await json(['audit', '-n', '10']);
  const events = audit.events as Json[];
  assert.ok(events.some((e) => e.event === 'grant' && e.grantId === access.grant_id), JSON.stringify(events));
  assert.ok(events.some((e) => e.event === 'session' && e.grantId === access.grant_id && e.bytesUp === 4), JSON.stringify(events));
  const aTable = await run(['audit']);
  assert.match(aTable.out, /^TIME\s+EVENT\s+USER\s+CLIENT\s+BACKEND\s+TARGET\s+GRANT\s+UP\s+DOWN\s+DETAIL\n/);
  assert.equal((await run(['audit', '-n', '0'])).code, 2, 'a bad --limit is a usage error');

  // dk logout removes the file; the commands need credentials again.
  const logout = await run(['logout']);
  assert.equal(logout.code, 0);
  assert.equal(existsSync(credsFile), false);
  assert.equal((await run(['grants'])).code, 3);
  assert.match((await run(['logout'])).out, /^not logged in/);
});

test('flags and DK_API/DK_TOKEN override the stored login; the stored token goes only to the stored address', async (t) => {
  const { gw, run, json, credsFile } = await stack(t);
  assert.equal((await run(['login', '--api', gw.api], { DK_TOKEN: ADMIN })).code, 0, 'DK_TOKEN works for dk login');
  assert.equal(statSync(credsFile).mode & 0o777, 0o600);
  // DK_TOKEN and --token replace the stored token: a wrong one is refused (exit 3, 401).
  const envTok = await run(['grants'], { DK_TOKEN: 'dk_wrong' });
  assert.equal(envTok.code, 3);
  assert.match(envTok.err, /401/);
  assert.equal((await run(['grants', '--token', 'dk_wrong'])).code, 3);
  // Another address (DK_API or --api) gets no stored token: refused before any request.
  const elsewhere = await run(['grants'], { DK_API: 'http://127.0.0.1:9' });
  assert.equal(elsewhere.code, 3);
  assert.match(elsewhere.err, /no credentials for http:\/\/127\.0\.0\.1:9 \(the stored login is for http:\/\/127\.0\.0\.1:\d+/);
  // With its own token, the other address is tried (and is unreachable here: exit 5).
  assert.equal((await run(['grants', '--api', 'http://127.0.0.1:9'], { DK_TOKEN: ADMIN })).code, 5);
  // The stored address given again explicitly (trailing slash and all) still gets the stored token.
  assert.deepEqual((await json(['grants', '--api', `${gw.api}/`])).grants, []);
  // A login file others may read works, with a warning.
  const { chmodSync } = await import('node:fs');
  chmodSync(credsFile, 0o644);
  const loose = await run(['grants']);
  assert.equal(loose.code, 0, loose.err);
  assert.match(loose.err, /others may read it \(mode 644\); run: chmod 600/);
  // A broken login file is a configuration error that says what to do.
  writeFileSync(credsFile, '{"version":1,"api":"not a url"}');
  const broken = await run(['grants']);
  assert.equal(broken.code, 2);
  assert.match(broken.err, /stored login is not valid .*dk logout, then dk login again/);
  // TOTP cannot be stored: the API has no exchange of a code for a token.
  const totp = await run(['login', '--api', gw.api, '--totp', 'admin:123456']);
  assert.equal(totp.code, 2);
  assert.match(totp.err, /no exchange of a code for a token/);
});

test('dk users lists, adds and removes API users through the API; a non-admin is refused', async (t) => {
  const { run, json, gw } = await stack(t);
  const api = ['--api', gw.api];
  const admin = { DK_TOKEN: ADMIN };
  const added = await json(['users', 'add', 'alice', '--backends', 'home', '--ports', '22', ...api], admin);
  assert.equal(added.user.name, 'alice');
  assert.match(added.token as string, /^dk_/);
  const list = await json(['users', ...api], admin);
  assert.deepEqual(list.users.map((u: Json) => u.name).sort(), ['admin', 'alice']);
  const table = await run(['users', 'list', ...api], admin);
  assert.match(table.out, /^NAME\s+ADMIN\s+BACKENDS\s+HOSTS\s+PORTS\s+TOTP\n/);
  assert.deepEqual(assertAligned(table.out, 'alice'), ['alice', 'no', 'home', '*', '22', 'no']);
  // alice's own token sees her backend, and is refused the admin-only commands (exit 3, 403).
  const alice = { DK_TOKEN: added.token as string };
  assert.deepEqual((await json(['backends', ...api], alice)).backends.map((b: Json) => b.name), ['home']);
  for (const cmd of [['audit'], ['users']]) {
    const r = await run([...cmd, ...api], alice);
    assert.equal(r.code, 3, `${cmd.join(' ')}: ${r.err}`);
    assert.match(r.err, /403/);
  }
  assert.equal((await run(['users', 'add', 'alice', ...api], admin)).code, 4, 'a taken name: 409');
  const removed = await run(['users', 'remove', 'alice', ...api], admin);
  assert.equal(removed.code, 0, removed.err);
  assert.equal(removed.out, 'user alice removed\n');
  assert.equal((await run(['backends', ...api], alice)).code, 3, 'her token stops working');
  // The local-data-dir command still works beside it.
  const local = await run(['user', 'list', '--data-dir', gw.dataDir]);
  assert.equal(local.code, 0, local.err);
  assert.match(local.out, /^admin \(admin\)/m);
});
