/** The page's calls to the management API: same origin, the session cookie, and the CSRF header. */

export interface Me { user: string; admin: boolean; csrf: string | null; csrf_header: string; expires_at: string | null; rendezvous: boolean }

export class ApiFailure extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let csrf: { header: string; token: string } | null = null;
export function setCsrf(me: Me | null): void {
  csrf = me?.csrf ? { header: me.csrf_header, token: me.csrf } : null;
}

export async function api<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers[csrf.header] = csrf.token;
  const r = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? null : JSON.stringify(body) });
  const json = (await r.json().catch(() => ({}))) as Record<string, unknown>;
  if (!r.ok) {
    const e = (json.error ?? {}) as { code?: string; message?: string };
    throw new ApiFailure(r.status, e.code ?? 'http_' + r.status, e.message ?? `HTTP ${r.status}`);
  }
  return json as T;
}
