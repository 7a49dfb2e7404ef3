// Browser sign-in, cookies, CSRF and the event stream over HTTP, against a real gateway (no browser).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { ADMIN, gateway } from '../helpers/stack.ts';
import { http } from '../helpers/net.ts';

const cookieOf = (setCookie: string | string[] | undefined): string => String(setCookie ?? '').split(';')[0]!;

/** A raw request whose response headers are returned as they arrive (for Set-Cookie and streams). */
function raw(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string }): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, { method: opts.method ?? 'GET', headers: opts.headers, rejectUnauthorized: false }, resolve);
    req.on('error', reject);
    req.end(opts.body);
  });
}
const text = async (r: IncomingMessage): Promise<string> => {
  let s = '';
  for await (const c of r) s += String(c);
  return s;
};

test('sign-in sets an HttpOnly SameSite=Strict cookie; the CSRF header and the origin are checked; bearer clients are unchanged', async (t) => {
  const g = await gateway({ auth_fail_limit: 3 });
  t.after(() => g.cleanup());
  const host = new URL(g.api).host;
  const login = await raw(`${g.api}/api/v1/session`, { method: 'POST', body: JSON.stringify({ token: ADMIN }) });
  assert.equal(login.statusCode, 201);
  const setCookie = String(login.headers['set-cookie']);
  assert.match(setCookie, /^dk_session=[\w-]{22}; Max-Age=43200; Path=\/; HttpOnly; SameSite=Strict$/, 'no Secure on plain HTTP');
  const me = JSON.parse(await text(login));
  assert.equal(me.user, 'admin');
  assert.equal(me.csrf_header, 'x-dk-csrf');
  const cookie = cookieOf(setCookie);

  const got = await http('GET', `${g.api}/api/v1/session`, { headers: { cookie } });
  assert.equal(got.json.csrf, me.csrf, 'GET /api/v1/session gives the page its CSRF token');
  assert.equal((await http('GET', `${g.api}/api/v1/backends`, { headers: { cookie } })).status, 200, 'a GET needs only the cookie');

  const body = { name: 'dave', backends: ['home'] };
  const noHeader = await http('POST', `${g.api}/api/v1/users`, { body, headers: { cookie, origin: `http://${host}` } });
  assert.deepEqual([noHeader.status, noHeader.json.error.code], [403, 'csrf']);
  const otherOrigin = await http('POST', `${g.api}/api/v1/users`, { body, headers: { cookie, 'x-dk-csrf': me.csrf, origin: 'http://127.0.0.1:1' } });
  assert.deepEqual([otherOrigin.status, otherOrigin.json.error.code], [403, 'csrf']);
  const crossSite = await http('POST', `${g.api}/api/v1/users`, { body, headers: { cookie, 'x-dk-csrf': me.csrf, 'sec-fetch-site': 'cross-site' } });
  assert.equal(crossSite.status, 403);
  const ok = await http('POST', `${g.api}/api/v1/users`, { body, headers: { cookie, 'x-dk-csrf': me.csrf, origin: `http://${host}` } });
  assert.equal(ok.status, 201);
  assert.equal((await http('POST', `${g.api}/api/v1/session`, { body: { token: ADMIN }, headers: { origin: 'http://evil.example' } })).status, 403, 'no sign-in from another origin');
  assert.equal((await http('DELETE', `${g.api}/api/v1/users/dave`, { token: ADMIN })).status, 200, 'a bearer token needs no CSRF header');

  // Sign-out ends the session on the server, whatever the browser keeps.
  const out = await http('DELETE', `${g.api}/api/v1/session`, { headers: { cookie, 'x-dk-csrf': me.csrf, origin: `http://${host}` } });
  assert.equal(out.status, 200);
  assert.equal((await http('GET', `${g.api}/api/v1/session`, { headers: { cookie } })).status, 401);

  // Wrong credentials count like the API's: the third failure (auth_fail_limit 3) blocks the address.
  for (const b of [{ token: 'dk_wrong' }, { user: 'admin', code: '000000' }]) {
    assert.equal((await http('POST', `${g.api}/api/v1/session`, { body: b })).status, 401);
  }
  assert.equal((await http('POST', `${g.api}/api/v1/session`, { body: { token: 'x'.repeat(201) } })).status, 400);
  // The cookie of the ended session is a third failure.
  await http('GET', `${g.api}/api/v1/session`, { headers: { cookie } });
  const blocked = await http('POST', `${g.api}/api/v1/session`, { body: { token: ADMIN } });
  assert.deepEqual([blocked.status, blocked.json.error.code], [429, 'too_many_failures']);
});

test('the event stream: state at once, capped per user, closed on sign-out', async (t) => {
  const g = await gateway();
  t.after(() => g.cleanup());
  const login = await raw(`${g.api}/api/v1/session`, { method: 'POST', body: JSON.stringify({ token: ADMIN }) });
  const me = JSON.parse(await text(login));
  const cookie = cookieOf(login.headers['set-cookie']);
  const streams: IncomingMessage[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await raw(`${g.api}/api/v1/events`, { headers: { cookie } });
    assert.equal(r.statusCode, 200);
    assert.match(String(r.headers['content-type']), /^text\/event-stream/);
    streams.push(r);
  }
  const first = await new Promise<string>((resolve) => { streams[0]!.once('data', (c: Buffer) => resolve(String(c))); });
  assert.match(first, /^event: state\ndata: \{"health":\{"agents_online":0/);
  const state = JSON.parse(first.split('\ndata: ')[1]!);
  assert.deepEqual([state.backends[0].name, state.grants_total, state.sessions_total, state.rendezvous], ['home', 0, 0, null]);
  const fifth = await http('GET', `${g.api}/api/v1/events`, { headers: { cookie } });
  assert.deepEqual([fifth.status, fifth.json.error.code], [429, 'too_many_streams']);
  const ended = streams.map((s) => new Promise<void>((resolve) => { s.on('end', resolve); s.on('close', resolve); s.resume(); }));
  await http('DELETE', `${g.api}/api/v1/session`, { headers: { cookie, 'x-dk-csrf': me.csrf, origin: g.api } });
  await Promise.all(ended);
  assert.equal((await http('GET', `${g.api}/api/v1/events`, { headers: { cookie } })).status, 401);
});

test('with mgmt_tls the cookie is Secure; curl gets text at /', async (t) => {
  const g = await gateway({ mgmt_tls: 'self-signed' });
  t.after(() => g.cleanup());
  const api = `https://127.0.0.1:${g.mgmtPort}`;
  const login = await raw(`${api}/api/v1/session`, { method: 'POST', body: JSON.stringify({ token: ADMIN }) });
  assert.equal(login.statusCode, 201);
  assert.match(String(login.headers['set-cookie']), /; Secure; SameSite=Strict$/);
  const page = await raw(`${api}/`, { headers: { accept: '*/*' } });
  assert.match(await text(page), /^DoorKeeper gateway\nagents online 0, grants 0, sessions 0\n/);
  const html = await raw(`${api}/`, { headers: { accept: 'text/html', 'accept-encoding': 'gzip' } });
  assert.equal(html.headers['content-encoding'], 'gzip');
  assert.match(String(html.headers['content-security-policy']), /default-src 'none'; script-src 'self'/);
  const etag = String(html.headers.etag);
  html.resume();
  const again = await raw(`${api}/dashboard/app.js`, {});
  assert.equal(again.statusCode, 200);
  const js = await text(again);
  assert.ok(js.length > 10_000);
  const cached = await raw(`${api}/`, { headers: { accept: 'text/html', 'if-none-match': etag } });
  assert.equal(cached.statusCode, 304);
  cached.resume();
});

test('audit filters: user, backend, time; a bad time is a clear 400', async (t) => {
  const g = await gateway();
  t.after(() => g.cleanup());
  assert.equal((await http('POST', `${g.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: 22 } })).status, 201);
  const all = await http('GET', `${g.api}/api/v1/audit`, { token: ADMIN });
  assert.ok(all.json.events.length > 0);
  const byUser = await http('GET', `${g.api}/api/v1/audit?user=nobody`, { token: ADMIN });
  assert.deepEqual(byUser.json.events, []);
  const mine = await http('GET', `${g.api}/api/v1/audit?user=admin&backend=home`, { token: ADMIN });
  assert.ok(mine.json.events.length > 0 && mine.json.events.every((e: any) => e.user === 'admin' && e.backend === 'home'));
  assert.deepEqual((await http('GET', `${g.api}/api/v1/audit?backend=elsewhere`, { token: ADMIN })).json.events, []);
  const future = await http('GET', `${g.api}/api/v1/audit?since=${Math.floor(Date.now() / 1000) + 3600}`, { token: ADMIN });
  assert.deepEqual(future.json.events, []);
  const past = await http('GET', `${g.api}/api/v1/audit?since=2000-01-01T00:00:00Z&until=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`, { token: ADMIN });
  assert.equal(past.json.events.length, all.json.events.length);
  const bad = await http('GET', `${g.api}/api/v1/audit?since=yesterday`, { token: ADMIN });
  assert.equal(bad.status, 400);
  assert.match(bad.json.error.message, /since must be an ISO time or Unix seconds/);
});
