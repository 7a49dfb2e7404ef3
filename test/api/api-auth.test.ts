import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Secret, TOTP } from 'otpauth';
import { buildApi } from '../../src/gateway/api/app.ts';
import { Gateway } from '../../src/gateway/gateway.ts';
import { GatewayConfigSchema } from '../../src/config/gateway-config.ts';
import { silentLogger } from '../../src/util/log.ts';
import { ADMIN, KEY, tempDir } from '../helpers/stack.ts';

let gw: Gateway;
let app: ReturnType<typeof buildApi>;
const env = (ip: string) => ({ incoming: { socket: { remoteAddress: ip } } });
const req = (path: string, ip: string, init: RequestInit = {}) => app.request(path, init, env(ip));
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

before(async () => {
  const base = 20_000 + Math.floor(Math.random() * 12_000);
  gw = await Gateway.start(GatewayConfigSchema.parse({
    bind: '127.0.0.1', serv_port: 0, access_ports: `${base}-${base + 20}`, data_dir: tempDir(), admin_token: ADMIN,
    backends: { home: { key: KEY }, lab: { key: KEY } }, auth_fail_limit: 5, auth_fail_limit_user: 4, trusted_proxies: ['127.0.0.9/32'],
  }), silentLogger);
  app = buildApi(gw.api(), silentLogger);
});
after(() => gw.stop());

test('no or wrong credentials: 401 with a message that says what to send', async () => {
  const r = await req('/api/v1/backends', '127.0.0.2');
  assert.equal(r.status, 401);
  assert.match(((await r.json()) as { error: { message: string } }).error.message, /Bearer/);
  assert.equal((await req('/api/v1/backends', '127.0.0.2', { headers: bearer('dk_wrong') })).status, 401);
});

test('failed authentications are rate-limited per source IP', async () => {
  for (let i = 0; i < 5; i++) assert.equal((await req('/api/v1/grants', '127.0.0.50', { headers: bearer('nope') })).status, 401);
  const blocked = await req('/api/v1/grants', '127.0.0.50', { headers: bearer(ADMIN) });
  assert.equal(blocked.status, 429, 'even a good token is refused while the IP is blocked');
  assert.ok(Number(blocked.headers.get('retry-after')) > 0);
  assert.equal((await req('/api/v1/grants', '127.0.0.51', { headers: bearer(ADMIN) })).status, 200, 'other IPs are unaffected');
});

test('TOTP guessing for one user is stopped whatever the source address; other users and made-up names are not locked', async () => {
  const r = gw.users.create('victim', { totp: true, permissions: { backends: ['home'], hosts: ['*'], ports: '22' } });
  const totp = new TOTP({ secret: Secret.fromBase32(new URL(r.totpUri!).searchParams.get('secret')!), digits: 6, period: 30, algorithm: 'SHA1' });
  const good = totp.generate();
  const wrong = good === '000000' ? '111111' : '000000';
  // Each guess from a new address: the per-address limit (5) never triggers.
  for (let i = 0; i < 4; i++) {
    assert.equal((await req('/api/v1/grants', `127.0.1.${i + 1}`, { headers: { authorization: `TOTP victim:${wrong}` } })).status, 401);
  }
  const stopped = await req('/api/v1/grants', '127.0.1.100', { headers: { authorization: `TOTP victim:${good}` } });
  assert.equal(stopped.status, 429, 'the right code is refused too while the user is locked');
  assert.match(((await stopped.json()) as { error: { message: string } }).error.message, /user "victim"/);
  assert.ok(Number(stopped.headers.get('retry-after')) > 60, 'the lock lasts into the 15-minute window');
  for (let i = 0; i < 6; i++) {
    assert.equal((await req('/api/v1/grants', `127.0.2.${i + 1}`, { headers: { authorization: `TOTP nobody${i % 2}:${wrong}` } })).status, 401, 'a made-up name is never locked (nothing to protect)');
  }
  assert.equal((await req('/api/v1/grants', '127.0.1.101', { headers: bearer(ADMIN) })).status, 200, 'other users are unaffected');
  const text = await (await app.request('/metrics', {}, env('127.0.0.1'))).text();
  assert.match(text, /dk_auth_blocked_total\{by="user"\} [1-9]/);
});

test('TOTP codes authenticate once; a replayed code is refused', async () => {
  const r = gw.users.create('phone', { totp: true, permissions: { backends: ['home'], hosts: ['*'], ports: '22' } });
  const secret = new URL(r.totpUri!).searchParams.get('secret')!;
  const code = new TOTP({ secret: Secret.fromBase32(secret), digits: 6, period: 30, algorithm: 'SHA1' }).generate();
  const h = { authorization: `TOTP phone:${code}` };
  assert.equal((await req('/api/v1/grants', '127.0.0.60', { headers: h })).status, 200);
  assert.equal((await req('/api/v1/grants', '127.0.0.60', { headers: h })).status, 401, 'same code again');
  assert.equal((await req('/api/v1/grants', '127.0.0.61', { headers: { authorization: 'TOTP phone:000000' } })).status, 401);
});

test('per-user permissions: backends, hosts and ports', async () => {
  const { token } = gw.users.create('alice', { permissions: { backends: ['home'], hosts: ['127.0.0.0/8'], ports: '22,8000-8100' } });
  const post = (body: object) => req('/api/v1/access', '127.0.0.70', { method: 'POST', headers: bearer(token), body: JSON.stringify(body) });
  assert.equal((await post({ backend: 'home', port: 22 })).status, 201);
  assert.equal((await post({ backend: 'home', port: 8050, host: '127.0.0.5' })).status, 201);
  assert.equal((await post({ backend: 'home', port: 23 })).status, 403, 'port not allowed');
  assert.equal((await post({ backend: 'home', port: 22, host: '192.0.2.1' })).status, 403, 'host not allowed');
  assert.equal((await post({ backend: 'lab', port: 22 })).status, 403, 'backend not allowed');
  assert.equal((await post({ backend: 'nope', port: 22 })).status, 404);
  assert.equal((await req('/api/v1/users', '127.0.0.70', { headers: bearer(token) })).status, 403, 'not an admin');
  const backends = (await (await req('/api/v1/backends', '127.0.0.70', { headers: bearer(token) })).json()) as { backends: { name: string }[] };
  assert.deepEqual(backends.backends.map((b) => b.name), ['home'], 'sees only allowed backends');
  // Grants: a user sees and revokes only their own.
  const adminGrant = (await (await req('/api/v1/access', '127.0.0.71', { method: 'POST', headers: bearer(ADMIN), body: '{"backend":"lab","port":22}' })).json()) as { grant_id: string };
  const mine = (await (await req('/api/v1/grants', '127.0.0.70', { headers: bearer(token) })).json()) as { grants: { user: string }[] };
  assert.ok(mine.grants.length === 2 && mine.grants.every((g) => g.user === 'alice'));
  assert.equal((await req(`/api/v1/grants/${adminGrant.grant_id}`, '127.0.0.70', { method: 'DELETE', headers: bearer(token) })).status, 404);
});

test('X-Forwarded-For is believed only from a trusted proxy', async () => {
  const body = '{"backend":"home","port":22}';
  const h = { ...bearer(ADMIN), 'x-forwarded-for': '198.51.100.7, 127.0.0.9' };
  const direct = (await (await req('/api/v1/access', '127.0.0.80', { method: 'POST', headers: h, body })).json()) as { client_ip: string };
  assert.equal(direct.client_ip, '127.0.0.80', 'untrusted peer: header ignored');
  const proxied = (await (await req('/api/v1/access', '127.0.0.9', { method: 'POST', headers: h, body })).json()) as { client_ip: string };
  assert.equal(proxied.client_ip, '198.51.100.7', 'trusted proxy: right-most untrusted address');
  const fwd = (await (await req('/api/v1/access', '127.0.0.9', { method: 'POST', headers: { ...bearer(ADMIN), forwarded: 'for="[2001:db8::5]:4711"' }, body })).json()) as { client_ip: string };
  assert.equal(fwd.client_ip, '2001:db8::5');
});

test('text answer for phones, healthz and metrics', async () => {
  const r = await req('/api/v1/access?format=text', '127.0.0.90', { method: 'POST', headers: bearer(ADMIN), body: '{"backend":"home","port":22}' });
  assert.equal(r.status, 201);
  assert.match(await r.text(), /^access_port \d+\nclient_ip 127\.0\.0\.90\n/);
  assert.equal((await req('/healthz', '127.0.0.90')).status, 200);
  const m = await (await req('/metrics', '127.0.0.90')).text();
  assert.match(m, /dk_grants_active \d+/);
  assert.match(m, /dk_api_auth_failures_total \d+/);
});
