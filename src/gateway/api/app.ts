import type { HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { z } from 'zod';
import { isIP } from 'node:net';
import { NetSet } from '../../util/cidr.ts';
import { PortSet } from '../../util/port-range.ts';
import type { Logger } from '../../util/log.ts';
import { ApiError, badRequest, forbidden, notFound, unauthorized } from '../errors.ts';
import type { ApiDeps, SessionView } from './deps.ts';
import type { Grant } from '../grants.ts';
import type { User } from '../users.ts';
import { authorize } from '../authorize.ts';
import { clientIp } from './client-ip.ts';
import { rendezvousRoutes } from './rendezvous-routes.ts';
import { dashboard } from '../dashboard/routes.ts';
import type { WebSession } from '../dashboard/web-sessions.ts';

/** `webSession`: the dashboard session of a cookie-authenticated request, else null. */
export type Env = { Bindings: Partial<HttpBindings>; Variables: { user: User; clientIp: string; webSession: WebSession | null } };

const AccessBody = z.object({
  backend: z.string().min(1).max(64),
  port: z.number().int().min(1).max(65535),
  host: z.string().refine((h) => isIP(h) !== 0, 'must be an IP address (IPv4 or IPv6) of a host the agent can reach').optional(),
}).strict();

const UserBody = z.object({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1-64 letters, digits, ".", "_" or "-"'),
  admin: z.boolean().default(false),
  backends: z.array(z.string()).default([]),
  hosts: z.array(z.string().refine((c) => { try { new NetSet([c]); return true; } catch { return false; } }, 'must be a CIDR or "*"')).default(['*']),
  ports: z.string().refine((p) => { try { PortSet.parse(p); return true; } catch { return false; } }, 'must be like "22,3389,8000-8100" or "*"').default('*'),
  totp: z.boolean().default(false),
}).strict();

const iso = (ms: number): string => new Date(ms).toISOString();

/** Grants and sessions in one dashboard event at most (docs/api.md, "Live events"). */
export const STREAM_ROWS = 500;

export function grantJson(g: Grant, gw: ApiDeps): Record<string, unknown> {
  return {
    grant_id: g.id, user: g.userName, client_ip: g.clientIp, access_port: g.accessPort, backend: g.backend, host: g.host, port: g.port,
    created_at: iso(g.createdAt), start_before: iso(g.startBefore), expires_at: iso(g.expiresAt),
    start_before_unix: Math.floor(g.startBefore / 1000), expires_at_unix: Math.floor(g.expiresAt / 1000),
    active_sessions: gw.activeSessions(g.id),
  };
}

function sessionJson(s: SessionView): Record<string, unknown> {
  return {
    id: s.key, kind: s.kind, backend: s.backend, grant_id: s.grantId, user: s.user, client: `${s.clientIp}:${s.clientPort}`,
    access_port: s.accessPort, target: s.target, started_at: iso(s.startedAt), bytes_up: s.bytesUp, bytes_down: s.bytesDown,
  };
}

function backendsJson(u: User, gw: ApiDeps): Record<string, unknown>[] {
  return gw.backends().filter((b) => authorize(u, { backend: b.name }) === null).map((b) => ({
    name: b.name, online: b.online, since: b.since === null ? null : iso(b.since), remote: b.remote !== null && u.admin ? b.remote : undefined,
    encrypted: b.encrypted, features: b.features, rtt_ms: b.rttMs, sessions: b.sessions, exposes: b.exposes, allowlist: b.allowlist,
    link_resumes: b.linkResumes, agent_version: b.version,
  }));
}

const visibleGrants = (u: User, gw: ApiDeps): Grant[] => gw.grants().filter((g) => u.admin || g.userName === u.name);
const visibleSessions = (u: User, gw: ApiDeps): SessionView[] => gw.sessions().filter((s) => u.admin || s.user === u.name);

/** An audit time bound: ISO 8601 or Unix seconds. */
function timeQuery(v: string | undefined, name: string): number | null {
  if (v === undefined || v === '') return null;
  const ms = /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v);
  if (!Number.isFinite(ms)) throw badRequest(`query parameter ${name} must be an ISO time or Unix seconds, like ${name}=2026-12-01T10:00:00Z`);
  return ms;
}

/** Parses a JSON body whatever its Content-Type (curl -d sends form encoding), with a clear 400 on failure. */
async function jsonBody<T extends z.ZodType>(c: Context<Env>, schema: T, example: string): Promise<z.infer<T>> {
  let raw: unknown;
  const text = await c.req.text();
  try {
    raw = JSON.parse(text);
  } catch {
    throw badRequest(`request body must be JSON, like ${example}`);
  }
  const r = schema.safeParse(raw);
  if (!r.success) throw badRequest(r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  return r.data;
}

/** The management API (SPEC §6), as a Hono app: testable with app.request(), served by node-server. */
export function buildApi(gw: ApiDeps, log: Logger): Hono<Env> {
  const app = new Hono<Env>();
  const trusted = gw.config.trusted_proxies.length > 0 ? new NetSet(gw.config.trusted_proxies) : null;

  // Every route, not only /api: a body is refused while it streams in, past max_body.
  app.use('*', bodyLimit({ maxSize: gw.config.max_body, onError: () => { throw new HTTPException(413); } }));
  app.use('*', async (c, next) => {
    c.set('clientIp', clientIp(c.env?.incoming?.socket?.remoteAddress, c.req.raw.headers, trusted));
    c.set('webSession', null);
    await next();
    gw.metrics.apiRequests.inc({ method: c.req.method, status: String(c.res.status) });
  });

  app.onError((err, c) => {
    if (err instanceof ApiError) return c.json({ error: { code: err.code, message: err.message } }, err.status);
    if (err instanceof HTTPException) {
      const status = err.status;
      const code = status === 413 ? 'body_too_large' : 'bad_request';
      // The rest of an oversized body is never read, so the connection cannot be reused.
      if (status === 413) c.header('Connection', 'close');
      return c.json({ error: { code, message: status === 413 ? `request body over ${gw.config.max_body} bytes` : err.message } }, status);
    }
    log.error({ err }, 'API handler failed');
    return c.json({ error: { code: 'internal', message: 'internal error; see the gateway log' } }, 500);
  });
  app.notFound((c) => c.json({ error: { code: 'not_found', message: `no route ${c.req.method} ${c.req.path}; see docs/api.md` } }, 404));

  app.get('/healthz', (c) => c.json({ status: 'ok', ...gw.health() }));
  app.get('/metrics', async (c) => c.text(await gw.metrics.registry.metrics(), 200, { 'content-type': gw.metrics.registry.contentType }));

  // The dashboard: the page, its assets and sign-in come before authentication.
  // Each event carries at most STREAM_ROWS grants and sessions (the newest), so one update stays
  // small however busy the gateway; the counts say how many there are.
  const dash = dashboard(gw, {
    snapshot: (u) => {
      const grants = visibleGrants(u, gw);
      const sessions = visibleSessions(u, gw);
      return {
        health: gw.health(), backends: backendsJson(u, gw),
        grants: grants.slice(-STREAM_ROWS).map((g) => grantJson(g, gw)), grants_total: grants.length,
        sessions: sessions.slice(-STREAM_ROWS).map(sessionJson), sessions_total: sessions.length,
        traffic: gw.traffic?.().at(-1) ?? null, rendezvous: u.admin ? gw.rendezvous?.()?.info() ?? null : null,
      };
    },
  });
  dash.publicRoutes(app);

  // Authentication for everything under /api: API token or TOTP code, or without either the
  // dashboard's session cookie (with its CSRF checks); failures limited per source address and,
  // for TOTP, per user name from any address (gw.auth).
  app.use('/api/*', async (c, next) => {
    const ip = c.get('clientIp');
    const h = c.req.header('authorization') ?? '';
    if (h === '' && !gw.auth.blocked(ip)) {
      const web = dash.user(c as Context<Env>);
      if (web) {
        c.set('user', web.user);
        c.set('webSession', web.session);
        await next();
        return;
      }
    }
    const bearer = /^Bearer\s+(\S{1,200})$/i.exec(h);
    const totp = /^TOTP\s+([^:\s]{1,64}):(\d{6})$/i.exec(h);
    const blocked = gw.auth.blocked(ip, totp?.[1]);
    if (blocked) {
      c.header('Retry-After', String(blocked.retryAfter));
      throw new ApiError(429, 'too_many_failures', blocked.message);
    }
    let user: User | null = null;
    if (bearer) user = gw.users.byToken(bearer[1]!);
    else if (totp) user = gw.users.verifyTotp(totp[1]!, totp[2]!);
    if (!user) {
      // A TOTP failure counts against the name only if it is a real user's: made-up names could
      // otherwise push real ones out of the bounded table.
      const named = totp && gw.users.byName(totp[1]!) ? totp[1]! : null;
      gw.auth.failed(ip, named, totp ? 'api_totp' : bearer ? 'api_token' : 'api_no_credentials');
      gw.metrics.apiAuthFailures.inc();
      throw unauthorized();
    }
    c.set('user', user);
    await next();
  });
  const admin = (c: Context<Env>): User => {
    const u = c.get('user');
    if (!u.admin) throw forbidden('this needs an admin token');
    return u;
  };

  app.post('/api/v1/access', async (c) => {
    const body = await jsonBody(c, AccessBody, '{"backend":"home","port":22,"host":"192.168.1.9"}');
    const ip = c.get('clientIp');
    const { grant: g, warnings } = await gw.requestAccess(c.get('user'), ip, body.backend, body.host ?? '127.0.0.1', body.port);
    if (c.req.query('format') === 'text' || (c.req.header('accept') ?? '').startsWith('text/plain')) {
      const warned = warnings.map((w) => `warning ${w}\n`).join('');
      return c.text(`access_port ${g.accessPort}\nclient_ip ${g.clientIp}\ntarget ${g.backend} ${g.host}:${g.port}\nstart_before ${iso(g.startBefore)}\nexpires_at ${iso(g.expiresAt)}\n${warned}`, 201);
    }
    return c.json({ ...grantJson(g, gw), warnings }, 201);
  });

  dash.authedRoutes(app);

  app.get('/api/v1/backends', (c) => c.json({ backends: backendsJson(c.get('user'), gw) }));

  app.get('/api/v1/backends/:name/scan', async (c) => {
    const u = c.get('user');
    const name = c.req.param('name');
    const port = Number(c.req.query('port'));
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw badRequest('query parameter port must be 1-65535, like ?port=22');
    const refused = authorize(u, { backend: name, port });
    if (refused) throw forbidden(refused);
    const r = await gw.scan(name, port);
    const hosts = r.hosts.filter((host) => authorize(u, { backend: name, host, port }) === null);
    return c.json({ backend: name, port, hosts, complete: r.complete, truncated: r.truncated, refused: r.refused });
  });

  app.get('/api/v1/grants', (c) => c.json({ grants: visibleGrants(c.get('user'), gw).map((g) => grantJson(g, gw)) }));
  app.get('/api/v1/grants/:id', (c) => {
    const g = visibleGrants(c.get('user'), gw).find((x) => x.id === c.req.param('id'));
    if (!g) throw notFound(`grant ${c.req.param('id')}`);
    return c.json(grantJson(g, gw));
  });
  app.delete('/api/v1/grants/:id', (c) => {
    const u = c.get('user');
    const g = visibleGrants(u, gw).find((x) => x.id === c.req.param('id'));
    if (!g) throw notFound(`grant ${c.req.param('id')}`);
    return c.json({ revoked: grantJson(gw.revokeGrant(g.id, u.name), gw) });
  });

  app.get('/api/v1/links', (c) => {
    const u = c.get('user');
    const l = gw.links?.() ?? { p2p: 'off' as const, agents: [], clients: [] };
    const iso = (ms: number): string => new Date(ms).toISOString();
    return c.json({
      p2p: l.p2p,
      // Agent links are the operator's business; a user sees the end-to-end clients that are theirs.
      agents: u.admin ? l.agents.map((a) => ({ backend: a.backend, remote: a.remote, since: iso(a.since), encrypted: a.encrypted, rtt_ms: a.rttMs, resumes: a.resumes, e2e: a.e2e })) : [],
      clients: l.clients.filter((x) => u.admin || x.user === u.name).map((x) => ({
        id: x.id, kind: 'dk connect', user: x.user, backend: x.backend, target: x.target, client_ip: x.client_ip, since: iso(x.since), path: x.path, rtt_ms: x.rtt_ms,
        relays: x.relays, punches: x.punches, path_changes: x.path_changes, changes: x.changes.map((ch) => ({ at: iso(ch.at), path: ch.path, reason: ch.reason })),
      })),
    });
  });

  app.get('/api/v1/sessions', (c) => c.json({ sessions: visibleSessions(c.get('user'), gw).map(sessionJson) }));
  app.get('/api/v1/sessions/:id', (c) => {
    const s = visibleSessions(c.get('user'), gw).find((x) => x.key === c.req.param('id'));
    if (!s) throw notFound(`session ${c.req.param('id')}`);
    return c.json(sessionJson(s));
  });
  app.delete('/api/v1/sessions/:id', (c) => {
    const s = visibleSessions(c.get('user'), gw).find((x) => x.key === c.req.param('id'));
    if (!s) throw notFound(`session ${c.req.param('id')}`);
    return c.json({ killed: sessionJson(gw.killSession(s.key)) });
  });

  app.get('/api/v1/audit', (c) => {
    admin(c);
    const limit = Math.min(1000, Math.max(1, Number(c.req.query('limit') ?? 100) || 100));
    // Filters search the newest 1000 events (the dashboard's audit view); without them, as before.
    const user = c.req.query('user') || null;
    const backend = c.req.query('backend') || null;
    const since = timeQuery(c.req.query('since'), 'since');
    const until = timeQuery(c.req.query('until'), 'until');
    const filtered = user !== null || backend !== null || since !== null || until !== null;
    const rows = filtered
      ? gw.audit.recent(1000).filter((e) => (user === null || e.user === user) && (backend === null || e.backend === backend)
        && (since === null || e.ts >= since) && (until === null || e.ts <= until)).slice(0, limit)
      : gw.audit.recent(limit);
    return c.json({ events: rows.map((e) => ({ ...e, ts: iso(e.ts) })) });
  });

  app.get('/api/v1/users', (c) => {
    admin(c);
    return c.json({ users: gw.users.list() });
  });
  app.post('/api/v1/users', async (c) => {
    admin(c);
    const b = await jsonBody(c, UserBody, '{"name":"alice","backends":["home"],"ports":"22"}');
    if (gw.users.byName(b.name)) throw new ApiError(409, 'exists', `user "${b.name}" exists`);
    const r = gw.users.create(b.name, { admin: b.admin, totp: b.totp, permissions: { backends: b.backends, hosts: b.hosts, ports: b.ports } });
    return c.json({ user: r.user, token: r.token, totp_uri: r.totpUri ?? null }, 201);
  });
  app.delete('/api/v1/users/:name', (c) => {
    admin(c);
    if (!gw.users.remove(c.req.param('name'))) throw notFound(`user "${c.req.param('name')}"`);
    dash.endUser(c.req.param('name'));
    return c.json({ removed: c.req.param('name') });
  });

  rendezvousRoutes(app, () => gw.rendezvous?.() ?? null, admin, (e) => gw.auditWrite?.(e));

  return app;
}
