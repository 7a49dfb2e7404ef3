import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Secret, TOTP } from 'otpauth';
import { GatewayConfigSchema } from '../../src/config/gateway-config.ts';
import { buildApi } from '../../src/gateway/api/app.ts';
import type { ApiDeps, BackendView, SessionView } from '../../src/gateway/api/deps.ts';
import { AuthGuard } from '../../src/gateway/auth-guard.ts';
import { authorize } from '../../src/gateway/authorize.ts';
import { ApiError, forbidden, notFound } from '../../src/gateway/errors.ts';
import type { Grant } from '../../src/gateway/grants.ts';
import { GatewayMetrics } from '../../src/gateway/metrics.ts';
import type { UserRepo } from '../../src/gateway/stores.ts';
import { ALL_PERMISSIONS, type Permissions, type User } from '../../src/gateway/users.ts';
import { silentLogger } from '../../src/util/log.ts';

/** Users in memory: tokens and TOTP secrets, the same contract as the SQLite store. */
class FakeUsers implements UserRepo {
  readonly #users = new Map<string, { user: User; token: string; totp: TOTP | null; lastStep: number }>();
  #id = 0;
  count(): number { return this.#users.size; }
  create(name: string, o: { admin?: boolean; permissions?: Permissions; totp?: boolean; token?: string }): { user: User; token: string; totpUri?: string } {
    const user: User = { id: ++this.#id, name, admin: !!o.admin, permissions: o.permissions ?? ALL_PERMISSIONS, hasTotp: !!o.totp };
    const token = o.token ?? `dk_${randomBytes(24).toString('base64url')}`;
    const totp = o.totp ? new TOTP({ label: name, secret: new Secret({ size: 20 }) }) : null;
    this.#users.set(name, { user, token, totp, lastStep: 0 });
    return totp ? { user, token, totpUri: totp.toString() } : { user, token };
  }
  setToken(name: string, token: string): void { const u = this.#users.get(name); if (u) u.token = token; }
  byToken(token: string): User | null { return [...this.#users.values()].find((u) => u.token === token)?.user ?? null; }
  byName(name: string): User | null { return this.#users.get(name)?.user ?? null; }
  list(): User[] { return [...this.#users.values()].map((u) => u.user); }
  remove(name: string): boolean { return this.#users.delete(name); }
  verifyTotp(name: string, code: string): User | null {
    const u = this.#users.get(name);
    const delta = u?.totp?.validate({ token: code, window: 1 });
    if (!u || delta === null || delta === undefined) return null;
    const step = Math.floor(Date.now() / 30_000) + delta;
    if (step <= u.lastStep) return null;
    u.lastStep = step;
    return u.user;
  }
}

const ADMIN = 'dk_admin-token-for-the-fake-api-0123';

/** A gateway as the API sees it (ApiDeps), with grants and sessions in memory: no sockets, no SQLite. */
function fake(): { deps: ApiDeps; users: FakeUsers; killed: string[]; scanHosts: string[] } {
  const config = GatewayConfigSchema.parse({ auth_fail_limit: 3, auth_fail_limit_user: 2, trusted_proxies: ['10.9.9.9/32'] });
  const metrics = new GatewayMetrics();
  const users = new FakeUsers();
  users.create('admin', { admin: true, token: ADMIN });
  const grants: Grant[] = [];
  const killed: string[] = [];
  const scanHosts = ['10.0.0.1', '10.0.0.2', '192.168.1.5'];
  const backends: BackendView[] = ['home', 'lab'].map((name) => ({
    name, online: name === 'home', since: 0, remote: '203.0.113.1:5000', encrypted: true, features: 7, rttMs: 1, sessions: 0, exposes: [], allowlist: null, linkResumes: 0, version: name === 'home' ? '0.1.0' : null,
  }));
  const sessions: SessionView[] = [
    { key: 'home.1', kind: 'grant', backend: 'home', grantId: null, user: 'alice', clientIp: '10.1.1.1', clientPort: 1, accessPort: 1, target: '127.0.0.1:22', startedAt: 0, bytesUp: 5, bytesDown: 7 },
    { key: 'home.2', kind: 'connect', backend: 'home', grantId: null, user: 'admin', clientIp: '10.1.1.2', clientPort: 2, accessPort: 0, target: '127.0.0.1:22', startedAt: 0, bytesUp: 0, bytesDown: 0 },
  ];
  const deps: ApiDeps = {
    config, metrics, users, auth: new AuthGuard({ perIp: 3, perUser: 2, userWindowMs: 900_000, logIntervalMs: 60_000, log: silentLogger, metrics }),
    audit: { recent: () => [] },
    health: () => ({ agents_online: 1, grants: grants.length, sessions: sessions.length }),
    backends: () => backends,
    scan: (backend) => (backend === 'home' ? Promise.resolve({ hosts: scanHosts, complete: true, truncated: false, refused: false }) : Promise.reject(new ApiError(503, 'backend_offline', 'offline'))),
    grants: () => grants,
    activeSessions: () => 0,
    requestAccess: (user, clientIp, backend, host, port) => {
      if (!backends.some((b) => b.name === backend)) return Promise.reject(notFound(`backend "${backend}"`));
      const refused = authorize(user, { backend, host, port });
      if (refused) return Promise.reject(forbidden(refused));
      const g: Grant = { id: `g${grants.length + 1}`, userId: user.id, userName: user.name, clientIp, accessPort: 40000 + grants.length, backend, host, port, createdAt: 0, startBefore: 1, expiresAt: 2 };
      grants.push(g);
      return Promise.resolve({ grant: g, warnings: [] });
    },
    revokeGrant: (id) => {
      const i = grants.findIndex((g) => g.id === id);
      if (i < 0) throw notFound(`grant ${id}`);
      return grants.splice(i, 1)[0]!;
    },
    sessions: () => sessions,
    killSession: (key) => {
      killed.push(key);
      return sessions.find((s) => s.key === key)!;
    },
  };
  return { deps, users, killed, scanHosts };
}

const env = (ip: string) => ({ incoming: { socket: { remoteAddress: ip } } });
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

test('API over a fake gateway: credentials, per-address and per-user limits', async () => {
  const { deps, users } = fake();
  const app = buildApi(deps, silentLogger);
  const req = (path: string, ip: string, init: RequestInit = {}) => app.request(path, init, env(ip));
  assert.equal((await req('/api/v1/grants', '10.0.0.1')).status, 401);
  for (let i = 0; i < 3; i++) assert.equal((await req('/api/v1/grants', '10.0.0.2', { headers: bearer('wrong') })).status, 401);
  assert.equal((await req('/api/v1/grants', '10.0.0.2', { headers: bearer(ADMIN) })).status, 429, 'the address is blocked');
  assert.equal((await req('/api/v1/grants', '10.0.0.3', { headers: bearer(ADMIN) })).status, 200);
  const r = users.create('phone', { totp: true });
  const good = new TOTP({ secret: Secret.fromBase32(new URL(r.totpUri!).searchParams.get('secret')!) }).generate();
  const wrong = good === '000000' ? '111111' : '000000';
  assert.equal((await req('/api/v1/grants', '10.0.1.1', { headers: { authorization: `TOTP phone:${wrong}` } })).status, 401);
  assert.equal((await req('/api/v1/grants', '10.0.1.2', { headers: { authorization: `TOTP phone:${wrong}` } })).status, 401);
  assert.equal((await req('/api/v1/grants', '10.0.1.3', { headers: { authorization: `TOTP phone:${good}` } })).status, 429, 'the user is locked, whatever the address');
});

test('API over a fake gateway: what a user sees and may do is filtered by authorize()', async () => {
  const { deps, users, killed } = fake();
  const app = buildApi(deps, silentLogger);
  const alice = users.create('alice', { permissions: { backends: ['home'], hosts: ['10.0.0.0/24'], ports: '22' } }).token;
  const req = (path: string, init: RequestInit = {}) => app.request(path, init, env('10.5.5.5'));
  const post = (body: object, token = alice) => req('/api/v1/access', { method: 'POST', headers: bearer(token), body: JSON.stringify(body) });
  assert.equal((await post({ backend: 'home', port: 22, host: '10.0.0.7' })).status, 201);
  assert.equal((await post({ backend: 'home', port: 23 })).status, 403);
  assert.equal((await post({ backend: 'lab', port: 22 })).status, 403);
  assert.equal((await post({ backend: 'nope', port: 22 })).status, 404);
  assert.equal((await post({ backend: 'home', port: 'x' })).status, 400);
  assert.equal((await post({ backend: 'lab', port: 22 }, ADMIN)).status, 201);
  const backends = (await (await req('/api/v1/backends', { headers: bearer(alice) })).json()) as { backends: { name: string; remote?: string }[] };
  assert.deepEqual(backends.backends.map((b) => b.name), ['home']);
  assert.equal(backends.backends[0]!.remote, undefined, 'only admins see agent addresses');
  const scan = (await (await req('/api/v1/backends/home/scan?port=22', { headers: bearer(alice) })).json()) as { hosts: string[] };
  assert.deepEqual(scan.hosts, ['10.0.0.1', '10.0.0.2'], 'hosts outside the user\'s CIDRs are not shown');
  assert.equal((await req('/api/v1/backends/home/scan?port=80', { headers: bearer(alice) })).status, 403);
  assert.equal((await req('/api/v1/backends/lab/scan?port=22', { headers: bearer(ADMIN) })).status, 503, 'an ApiError from the gateway keeps its status');
  const grants = (await (await req('/api/v1/grants', { headers: bearer(alice) })).json()) as { grants: { user: string }[] };
  assert.deepEqual(grants.grants.map((g) => g.user), ['alice'], 'a user sees only their grants');
  assert.equal((await req('/api/v1/grants/g2', { method: 'DELETE', headers: bearer(alice) })).status, 404, 'and cannot revoke another\'s');
  assert.equal((await req('/api/v1/grants/g2', { method: 'DELETE', headers: bearer(ADMIN) })).status, 200);
  const sessions = (await (await req('/api/v1/sessions', { headers: bearer(alice) })).json()) as { sessions: { id: string; bytes_down: number }[] };
  assert.deepEqual(sessions.sessions.map((s) => [s.id, s.bytes_down]), [['home.1', 7]]);
  assert.equal((await req('/api/v1/sessions/home.2', { method: 'DELETE', headers: bearer(alice) })).status, 404);
  assert.equal((await req('/api/v1/sessions/home.1', { method: 'DELETE', headers: bearer(alice) })).status, 200);
  assert.deepEqual(killed, ['home.1']);
  assert.equal((await req('/api/v1/users', { headers: bearer(alice) })).status, 403);
  const health = (await (await req('/healthz')).json()) as { status: string; grants: number };
  assert.deepEqual(health, { status: 'ok', agents_online: 1, grants: 1, sessions: 2 });
});
