import type { Context, Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { streamSSE } from 'hono/streaming';
import type { TLSSocket } from 'node:tls';
import { gzipSync } from 'node:zlib';
import { z } from 'zod';
import { ApiError, badRequest, unauthorized } from '../errors.ts';
import type { ApiDeps } from '../api/deps.ts';
import type { Env } from '../api/app.ts';
import type { User } from '../users.ts';
import { csrfMatches, WebSessions, type WebSession } from './web-sessions.ts';
import { EventHub } from './event-hub.ts';

export const COOKIE = 'dk_session';
export const CSRF_HEADER = 'x-dk-csrf';

const LoginBody = z.union([
  z.object({ token: z.string().min(1).max(200) }).strict(),
  z.object({ user: z.string().min(1).max(64), code: z.string().regex(/^\d{6}$/, 'must be 6 digits') }).strict(),
]);

/** What the dashboard routes take from the API's own views (app.ts), so both show the same. */
export interface DashboardViews {
  /** The state a user's event stream carries: backends, grants, sessions, counts. */
  snapshot(u: User): Record<string, unknown>;
}

interface Asset { type: string; body: string; etag: string }
type AssetName = 'index.html' | 'app.js' | 'app.css';
/** The bundled page, loaded on the first request for it, so a gateway nobody browses never holds it. */
let assets: Promise<Record<AssetName, Asset>> | null = null;
const gzipped = new Map<AssetName, Buffer>();
function loadAssets(): Promise<Record<AssetName, Asset>> {
  assets ??= import('./assets.gen.ts').then((m) => m.assets);
  return assets;
}
/** True once the bundle has been loaded into this process (for the start-up/memory measurement). */
export const assetsLoaded = (): boolean => assets !== null;

/** The page's security headers: nothing but its own scripts, styles and API; never in a frame. */
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

const encrypted = (c: Context<Env>): boolean => (c.env?.incoming?.socket as TLSSocket | undefined)?.encrypted === true;

/**
 * The request's Origin (or, lacking one, Sec-Fetch-Site) names this gateway. Browsers send
 * Origin on every POST/DELETE, so a page elsewhere — another port on the same host included,
 * which SameSite does not tell apart — is refused even though its request carries the cookie.
 */
function sameOrigin(c: Context<Env>): boolean {
  const origin = c.req.header('origin');
  if (origin !== undefined) {
    try {
      return new URL(origin).host === c.req.header('host');
    } catch {
      return false;
    }
  }
  const site = c.req.header('sec-fetch-site');
  return site === undefined || site === 'same-origin' || site === 'none';
}

export interface CookieAuth {
  /**
   * The user of a request without an Authorization header, from its session cookie: null when
   * it has no cookie; throws 401 for an unknown or expired one, 403 for a state-changing call
   * without the session's CSRF token or from another origin.
   */
  user(c: Context<Env>): { user: User; session: WebSession } | null;
  /** Ends a removed user's browser sessions and event streams. */
  endUser(name: string): void;
}

/**
 * The dashboard (docs/dashboard.md): the page at `/` (text for curl), its bundled assets, browser
 * sign-in with a session cookie (`/api/v1/session`), live updates (`/api/v1/events`) and the
 * traffic series (`/api/v1/traffic`). The API's bearer and TOTP clients are not affected.
 */
export interface Dashboard extends CookieAuth {
  /** The page, its assets and sign-in: registered before the API's authentication. */
  publicRoutes(app: Hono<Env>): void;
  /** Session info, sign-out, events and the traffic series: registered after it. */
  authedRoutes(app: Hono<Env>): void;
}

export function dashboard(gw: ApiDeps, views: DashboardViews, opts: { sessions?: WebSessions; hub?: EventHub } = {}): Dashboard {
  const web = opts.sessions ?? new WebSessions();
  const hub = opts.hub ?? new EventHub({
    // A stream opened with a bearer token has no web session to outlive.
    alive: (id) => id.startsWith('bearer:') || web.alive(id),
    snapshot: (name) => {
      const u = gw.users.byName(name);
      return u ? views.snapshot(u) : null;
    },
  });

  const auth = {
    user(c) {
      const id = getCookie(c, COOKIE);
      if (id === undefined) return null;
      const s = web.get(id);
      const user = s ? gw.users.byName(s.user) : null;
      if (!s || !user) {
        if (s) web.delete(s.id);
        gw.auth.failed(c.get('clientIp'), null, 'api_session');
        gw.metrics.apiAuthFailures.inc();
        throw new ApiError(401, 'unauthorized', 'your dashboard session has ended; sign in again (POST /api/v1/session)');
      }
      const m = c.req.method;
      if (m !== 'GET' && m !== 'HEAD') {
        if (!sameOrigin(c)) throw new ApiError(403, 'csrf', 'a cookie-authenticated request must come from the dashboard\'s own origin');
        if (!csrfMatches(s, c.req.header(CSRF_HEADER))) throw new ApiError(403, 'csrf', `a cookie-authenticated ${m} needs the ${CSRF_HEADER} header from GET /api/v1/session`);
      }
      return { user, session: s };
    },
    endUser(name) {
      hub.closeSessions(web.deleteUser(name));
    },
  } satisfies CookieAuth;

  const sendAsset = async (c: Context<Env>, name: AssetName, headers: Record<string, string> = {}): Promise<Response> => {
    const a = (await loadAssets())[name];
    const h: Record<string, string> = { 'content-type': a.type, etag: a.etag, 'cache-control': 'no-cache', vary: 'accept-encoding', ...headers };
    if (c.req.header('if-none-match') === a.etag) return c.body(null, 304, h);
    if (/\bgzip\b/.test(c.req.header('accept-encoding') ?? '')) {
      let z = gzipped.get(name);
      if (!z) gzipped.set(name, z = gzipSync(a.body));
      return c.body(new Uint8Array(z), 200, { ...h, 'content-encoding': 'gzip' });
    }
    return c.body(a.body, 200, h);
  };

  const sessionJson = (s: WebSession | null, u: User): Record<string, unknown> => ({
    user: u.name, admin: u.admin, csrf: s?.csrf ?? null, csrf_header: CSRF_HEADER,
    expires_at: s ? new Date(web.expiresAt(s)).toISOString() : null, rendezvous: u.admin && !!gw.rendezvous?.(),
  });

  const publicRoutes = (app: Hono<Env>): void => {
    // A browser asks for text/html; curl (Accept: */*) and scripts get a few lines of text.
    app.get('/', async (c) => {
      if (/\btext\/html\b/.test(c.req.header('accept') ?? '')) return sendAsset(c, 'index.html', PAGE_HEADERS);
      const h = gw.health();
      return c.text([
        'DoorKeeper gateway',
        `agents online ${h.agents_online}, grants ${h.grants}, sessions ${h.sessions}`,
        'dashboard: open this address in a browser',
        'API: /api/v1/… with "Authorization: Bearer TOKEN" (docs/api.md); health: /healthz; metrics: /metrics',
        '',
      ].join('\n'));
    });
    app.get('/dashboard/app.js', (c) => sendAsset(c, 'app.js', { 'x-content-type-options': 'nosniff' }));
    app.get('/dashboard/app.css', (c) => sendAsset(c, 'app.css', { 'x-content-type-options': 'nosniff' }));

    // Sign-in: the same credentials as the API, the same failure limits (gw.auth), then a cookie.
    app.post('/api/v1/session', async (c) => {
      if (!sameOrigin(c)) throw new ApiError(403, 'csrf', 'sign in from the dashboard\'s own origin');
      const ip = c.get('clientIp');
      let raw: unknown;
      try {
        raw = JSON.parse(await c.req.text());
      } catch {
        throw badRequest('request body must be JSON, like {"token":"dk_…"} or {"user":"alice","code":"123456"}');
      }
      const body = LoginBody.safeParse(raw);
      if (!body.success) throw badRequest('send {"token":"dk_…"} or {"user":"alice","code":"123456"}');
      const totpName = 'user' in body.data ? body.data.user : undefined;
      const blocked = gw.auth.blocked(ip, totpName);
      if (blocked) {
        c.header('Retry-After', String(blocked.retryAfter));
        throw new ApiError(429, 'too_many_failures', blocked.message);
      }
      const user = 'token' in body.data ? gw.users.byToken(body.data.token) : gw.users.verifyTotp(body.data.user, body.data.code);
      if (!user) {
        const named = totpName !== undefined && gw.users.byName(totpName) ? totpName : null;
        gw.auth.failed(ip, named, totpName !== undefined ? 'dashboard_totp' : 'dashboard_token');
        gw.metrics.apiAuthFailures.inc();
        throw unauthorized();
      }
      const { session, evicted } = web.create(user.name);
      hub.closeSessions(evicted);
      const old = getCookie(c, COOKIE);
      if (old !== undefined && web.delete(old)) hub.closeSessions([old]);
      setCookie(c, COOKIE, session.id, { httpOnly: true, sameSite: 'Strict', secure: encrypted(c), path: '/', maxAge: Math.floor(web.maxAgeMs / 1000) });
      return c.json(sessionJson(session, user), 201);
    });
  };

  const authedRoutes = (app: Hono<Env>): void => {
    app.get('/api/v1/session', (c) => {
      const s = c.get('webSession');
      return c.json(sessionJson(s, c.get('user')));
    });
    // Sign-out: the session ends here, its event streams close, and the browser drops the cookie.
    app.delete('/api/v1/session', (c) => {
      const s = c.get('webSession');
      if (!s) throw badRequest('sign-out is for dashboard sessions (cookie); an API token stays valid until the user is removed');
      web.delete(s.id);
      hub.closeSessions([s.id]);
      deleteCookie(c, COOKIE, { path: '/', secure: encrypted(c) });
      return c.json({ signed_out: s.user });
    });

    app.get('/api/v1/traffic', (c) => c.json({ interval_ms: 5000, samples: gw.traffic?.() ?? [] }));

    // Live updates: one stream per tab, capped per user and in total; a "state" event when what
    // the user sees changed (checked every second), a comment line every 15 s otherwise.
    app.get('/api/v1/events', (c) => {
      const u = c.get('user');
      const sessionId = c.get('webSession')?.id ?? `bearer:${u.name}`;
      // Checked before the stream starts, so a refusal is an ordinary JSON error.
      const refused = hub.refusal(u.name);
      if (refused) {
        throw new ApiError(429, 'too_many_streams', refused === 'user'
          ? `you hold ${hub.maxPerUser} event streams already; close a dashboard tab`
          : `the gateway holds ${hub.maxTotal} event streams already; retry later`);
      }
      return streamSSE(c, async (stream) => {
        await new Promise<void>((done) => {
          const sink = {
            write: (text: string) => stream.write(text).then(() => undefined),
            close: () => { done(); },
          };
          const added = hub.add(sessionId, u.name, sink);
          if ('refused' in added) {
            done();
            return;
          }
          const a = added;
          stream.onAbort(() => { a.remove(); done(); });
        });
      });
    });
  };

  return { ...auth, publicRoutes, authedRoutes };
}
