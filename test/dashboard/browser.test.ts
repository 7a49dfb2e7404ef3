// The dashboard in a real browser: Debian's Chromium, headless, driven by playwright-core, against
// a real gateway and agent on loopback. One browser for the whole file (start-up is the slow part).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { URI } from 'otpauth';
import { ADMIN, agent, gateway, online } from '../helpers/stack.ts';
import { dial, echoServer, http } from '../helpers/net.ts';
import { launchChromium } from '../helpers/browser.ts';
import { UdpPeer } from '../helpers/rustdesk.ts';
import type { Agent } from '../../src/agent/agent.ts';
import { packageVersion } from '../../src/util/version.ts';
import { Forwarder } from '../../src/connect/forwarder.ts';
import { silentLogger } from '../../src/util/log.ts';

/**
 * Screenshots of every view: into docs/dashboard/ with DK_SCREENSHOTS=docs (`npm run screenshots`),
 * else into a temporary directory, so an ordinary test run leaves the checkout as it was.
 */
const SHOTS = process.env.DK_SCREENSHOTS === 'docs'
  ? fileURLToPath(new URL('../../docs/dashboard/', import.meta.url))
  : `${mkdtempSync(join(tmpdir(), 'dk-dashboard-shots-'))}/`;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

let browser: Browser | null = null;
let skip: string | false = false;
let g: Awaited<ReturnType<typeof gateway>>;
let echo: { server: import('node:net').Server; port: number };
let ag: Agent | null = null;
let ctx: BrowserContext;
let page: Page;
const open: Socket[] = [];

before(async () => {
  const r = await launchChromium();
  if ('skip' in r) {
    skip = r.skip;
    process.stdout.write(`# dashboard browser tests skipped: ${r.skip}\n`);
    return;
  }
  browser = r.browser;
  // With the RustDesk rendezvous on (random ports), for the peers view.
  g = await gateway({ rendezvous: { port: 0 } });
  echo = await echoServer();
  ctx = await browser.newContext({ viewport: DESKTOP });
  ctx.setDefaultTimeout(15_000);
  page = await ctx.newPage();
});

after(async () => {
  for (const s of open) s.destroy();
  await browser?.close();
  await ag?.stop();
  echo?.server.close();
  await g?.cleanup();
});

const shot = async (p: Page, view: string): Promise<void> => {
  mkdirSync(SHOTS, { recursive: true });
  for (const [size, vp] of [['desktop', DESKTOP], ['phone', PHONE]] as const) {
    await p.setViewportSize(vp);
    await p.screenshot({ path: `${SHOTS}${view}-${size}.png`, fullPage: size === 'phone' });
  }
  await p.setViewportSize(DESKTOP);
};

const go = async (view: string): Promise<void> => {
  await page.getByRole('navigation', { name: 'Views' }).getByRole('link', { name: view[0]!.toUpperCase() + view.slice(1), exact: true }).click();
  await page.getByRole('heading', { level: 2 }).first().waitFor();
};

test('curl gets text at /, a browser the page with a strict content policy', { skip }, async () => {
  const text = await http('GET', `${g.api}/`, { headers: { accept: '*/*' } });
  assert.equal(text.status, 200);
  assert.match(text.text, /^DoorKeeper gateway\n/);
  const html = await http('GET', `${g.api}/`, { headers: { accept: 'text/html' } });
  assert.match(html.text, /<script type="module" src="\/dashboard\/app.js">/);
});

test('a wrong token is refused on the sign-in form', { skip }, async () => {
  await page.goto(g.api);
  await page.getByRole('textbox', { name: 'API token' }).fill('dk_not-a-real-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor();
  assert.equal(await page.context().cookies().then((c) => c.length), 0, 'no cookie after a refused sign-in');
  await shot(page, 'login');
});

test('sign in with the admin token; the agent comes online on the backends view', { skip }, async () => {
  await page.getByRole('textbox', { name: 'API token' }).fill(ADMIN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  const [cookie] = await ctx.cookies();
  assert.equal(cookie?.name, 'dk_session');
  assert.equal(cookie?.httpOnly, true);
  assert.equal(cookie?.sameSite, 'Strict');
  await go('backends');
  const row = page.getByRole('row').filter({ hasText: 'home' });
  await row.getByText('offline').waitFor();
  ag = await agent(g.servPort);
  await online(g);
  await row.getByText('online', { exact: true }).waitFor();
  // The version the agent told the gateway (AGENT_INFO).
  await row.getByText(packageVersion(), { exact: true }).waitFor();
});

let accessPort = 0;
test('create a grant on the page, watch a live session\'s bytes grow, kill it', { skip }, async () => {
  await go('grants');
  await page.getByLabel('Port').fill(String(echo.port));
  await page.getByLabel('Host').fill('127.0.0.1');
  await page.getByRole('button', { name: 'Request access' }).click();
  await page.getByRole('status').filter({ hasText: 'Grant made' }).waitFor();
  assert.equal(g.gateway.grants.all().length, 1);
  accessPort = g.gateway.grants.all()[0]!.accessPort;
  await page.getByRole('row').filter({ hasText: `home 127.0.0.1:${echo.port}` }).waitFor();
  await shot(page, 'grants');

  const s = await dial(accessPort);
  open.push(s);
  s.resume();
  await go('sessions');
  const up = page.locator('[data-session-up]');
  await up.waitFor();
  const sizes: string[] = [];
  for (let i = 0; i < 3; i++) {
    s.write(Buffer.alloc(40_000 * (i + 1), 1));
    // Read from here, not evaluated in the page: the dashboard's CSP forbids string evaluation.
    const prev = sizes.at(-1) ?? '0 B';
    let now = prev;
    for (let tries = 0; tries < 300 && (now === prev || now === '0 B'); tries++) {
      await new Promise((r) => setTimeout(r, 50));
      now = await up.textContent() ?? '';
    }
    sizes.push(now);
  }
  assert.equal(new Set(sizes).size, 3, `the up count changed live each time: ${sizes.join(' → ')}`);
  await shot(page, 'sessions');
  // The gateway closes the client's end (a FIN; this socket is half-open capable, so 'end').
  const closed = Promise.race([once(s, 'end'), once(s, 'close')]);
  await page.getByRole('button', { name: /^Kill session/ }).click();
  await closed;
  await page.getByText('No live sessions.').waitFor();
});

test('links: an end-to-end dk connect client shows with its path and the reason of its last decision', { skip }, async () => {
  const fwd = new Forwarder({
    gatewayHost: '127.0.0.1', gatewayPort: g.servPort, gatewayKey: g.gateway.linkKey.publicRaw, token: ADMIN,
    backend: 'home', port: echo.port, bind: '127.0.0.1', localPort: 0, log: silentLogger,
  });
  try {
    const s = await dial(await fwd.listen());
    open.push(s);
    s.write('hi');
    await go('links');
    const row = page.getByRole('row').filter({ hasText: `127.0.0.1:${echo.port}` });
    await row.getByText('relay', { exact: true }).waitFor();
    // On loopback the punch has no candidate to dial: the last decision says so.
    await row.getByText(/^path=relay reason="no direct path/).waitFor({ timeout: 20_000 });
    await page.getByRole('region', { name: 'Agent links' }).getByRole('row').filter({ hasText: 'home' }).getByText('yes', { exact: true }).waitFor();
    await shot(page, 'links');
  } finally {
    fwd.close();
  }
  await page.getByText('No dk connect clients.').waitFor();
});

test('overview and audit views; the audit filter by user', { skip }, async () => {
  await go('overview');
  await page.getByRole('img', { name: /^Throughput/ }).waitFor();
  await shot(page, 'overview');
  await go('audit');
  await page.getByRole('row').filter({ hasText: 'session' }).first().waitFor();
  await page.getByLabel('User').fill('nobody-by-this-name');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.getByText('No events match.').waitFor();
  await page.getByLabel('User').fill('admin');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.getByRole('row').filter({ hasText: 'admin' }).first().waitFor();
  await shot(page, 'audit');
  await go('backends');
  await shot(page, 'backends');
});

test('RustDesk peers: a peer that registers shows on the peers view', { skip }, async () => {
  const udp = g.gateway.rendezvous!.ports().udp_port!;
  const peer = await UdpPeer.open();
  try {
    peer.send({ union: { case: 'registerPk', value: { id: '123456789', uuid: Buffer.from('uuid-dash'), pk: Buffer.alloc(32, 7) } } }, udp);
    assert.ok(await peer.next());
    peer.send({ union: { case: 'registerPeer', value: { id: '123456789' } } }, udp);
    assert.ok(await peer.next());
    await go('peers');
    await page.getByRole('row').filter({ hasText: '123456789' }).getByText('online', { exact: true }).waitFor();
    await shot(page, 'peers');
  } finally {
    peer.close();
  }
});

test('revoke the grant from the page', { skip }, async () => {
  await go('grants');
  await page.getByRole('button', { name: /^Revoke grant/ }).click();
  await page.getByText('No grants in force.').waitFor();
  assert.equal(g.gateway.grants.all().length, 0);
});

test('enrol a TOTP user: the QR code is shown, and its code signs in', { skip }, async () => {
  await go('users');
  await page.getByLabel('Name').fill('carol');
  await page.getByLabel('Backends (comma-separated)').fill('home');
  await page.getByLabel('Ports').fill('22');
  await page.getByLabel('Authenticator app (TOTP)').check();
  await page.getByRole('button', { name: 'Add user' }).click();
  const qr = page.getByRole('img', { name: 'TOTP enrolment QR code for carol' });
  await qr.locator('svg').waitFor();
  await shot(page, 'users');
  await page.getByText('Enter the key by hand').click();
  const uri = await page.locator('details code.token').textContent();
  assert.match(uri ?? '', /^otpauth:\/\/totp\//);
  const totp = URI.parse(uri!);
  // A fresh browser (no cookie) signs in as carol with the authenticator's code.
  const other = await browser!.newContext({ viewport: PHONE });
  const p2 = await other.newPage();
  await p2.goto(g.api);
  await p2.getByRole('radio', { name: 'Authenticator code' }).check();
  await p2.getByLabel('User').fill('carol');
  await p2.getByLabel('6-digit code').fill(totp.generate());
  await p2.getByRole('button', { name: 'Sign in' }).click();
  await p2.getByRole('heading', { name: 'Overview' }).waitFor();
  assert.equal(await p2.getByRole('link', { name: 'Users' }).count(), 0, 'no admin views for a user');
  await other.close();
});

test('CSRF: a page on another loopback port, and a request without the CSRF header, are refused', { skip }, async () => {
  const metric = async (): Promise<number> => {
    const m = await g.gateway.metrics.apiRequests.get();
    return m.values.filter((v) => v.labels.method === 'POST' && v.labels.status === '403').reduce((a, v) => a + v.value, 0);
  };
  // The attacker's page: same host (so SameSite=Strict still sends the cookie), another port.
  const evil: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><title>evil</title><script>
      fetch(${JSON.stringify(`${g.api}/api/v1/users`)}, { method: 'POST', mode: 'no-cors', credentials: 'include',
        body: JSON.stringify({ name: 'mallory', admin: true }) }).then(() => { document.title = 'sent'; }, () => { document.title = 'failed'; });
    </script>`);
  });
  evil.listen(0, '127.0.0.1');
  await once(evil, 'listening');
  try {
    const before403 = await metric();
    const p3 = await ctx.newPage();
    await p3.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
    await p3.waitForFunction('document.title !== "evil"');
    await p3.close();
    assert.equal(g.gateway.users.byName('mallory'), null, 'the cross-origin POST made no user');
    assert.equal(await metric(), before403 + 1, 'it reached the gateway with the cookie and was refused 403 (not 401)');
  } finally {
    evil.close();
  }
  // Same origin, cookie, no CSRF header (a page script that did not read GET /api/v1/session).
  const r = await page.evaluate(async () => {
    const res = await fetch('/api/v1/users', { method: 'POST', body: JSON.stringify({ name: 'mallory2' }) });
    return { status: res.status, body: await res.json() as { error: { code: string } } };
  });
  assert.deepEqual([r.status, r.body.error.code], [403, 'csrf']);
  // Outside a browser with the cookie: no Origin, no header.
  const cookie = (await ctx.cookies())[0]!;
  const direct = await http('POST', `${g.api}/api/v1/users`, { body: { name: 'mallory3' }, headers: { cookie: `${cookie.name}=${cookie.value}` } });
  assert.equal(direct.status, 403);
  assert.equal(g.gateway.users.byName('mallory2') ?? g.gateway.users.byName('mallory3'), null);
});

test('sign out ends the session: the cookie no longer works', { skip }, async () => {
  const cookie = (await ctx.cookies())[0]!;
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
  const r = await http('GET', `${g.api}/api/v1/session`, { headers: { cookie: `${cookie.name}=${cookie.value}` } });
  assert.equal(r.status, 401);
});

test('keyboard only, at phone width: sign in, open a view; nothing wider than the screen', { skip }, async () => {
  const phone = await browser!.newContext({ viewport: PHONE });
  phone.setDefaultTimeout(15_000);
  const p = await phone.newPage();
  try {
    await p.goto(g.api);
    await p.getByRole('textbox', { name: 'API token' }).waitFor();
    await p.keyboard.press('Tab'); // the sign-in choice (one stop for the radio group)
    await p.keyboard.press('Tab');
    await p.locator('#token:focus').waitFor();
    await p.keyboard.type(ADMIN);
    await p.keyboard.press('Enter');
    await p.getByRole('heading', { name: 'Overview' }).waitFor();
    await p.keyboard.press('Tab');
    await p.locator('a.skip:focus').waitFor();
    for (let i = 0; i < 4; i++) await p.keyboard.press('Tab'); // Overview, Backends, Grants, Sessions
    await p.locator('nav a[href="#/sessions"]:focus').waitFor();
    await p.keyboard.press('Enter');
    await p.getByRole('heading', { name: 'Live sessions' }).waitFor();
    const overflow = await p.evaluate(() => {
      const d = (globalThis as any).document.documentElement;
      return d.scrollWidth - d.clientWidth;
    });
    assert.equal(overflow, 0, 'no horizontal scrolling at 390 px');
  } finally {
    await phone.close();
  }
});
