/** A small client for the management API, used by `dk access`, `dk scan` and friends. */
export class ApiClientError extends Error {
  readonly status: number;
  readonly exitCode: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'ApiClientError';
    this.status = status;
    // Exit codes: 3 = refused (auth, permission, rate limit), 4 = other API error, 5 = API unreachable.
    this.exitCode = status === 0 ? 5 : [401, 403, 429].includes(status) ? 3 : 4;
  }
}

export interface Credentials {
  api: string;
  token?: string;
  totp?: string;
}

export async function callApi(c: Credentials, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const auth = c.token ? `Bearer ${c.token}` : c.totp ? `TOTP ${c.totp}` : null;
  if (!auth) throw new ApiClientError(401, 'no credentials: pass --token TOKEN (or set DK_TOKEN), or --totp USER:CODE');
  let res: Response;
  const url = new URL(path, c.api.endsWith('/') ? c.api : `${c.api}/`);
  try {
    res = await fetch(url, {
      method,
      headers: { authorization: auth, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : null,
      signal: AbortSignal.timeout(30_000),
    });
  } catch (e) {
    throw new ApiClientError(0, `cannot reach the API at ${c.api}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}`);
  }
  const text = await res.text();
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new ApiClientError(res.status || 500, `the API answered ${res.status} with something that is not JSON`);
  }
  if (!res.ok) {
    const err = json.error as { message?: string } | undefined;
    throw new ApiClientError(res.status, `${res.status}: ${err?.message ?? text}`);
  }
  return json;
}
