import { FingerprintMismatchError, pinnedFetch } from './pinned-fetch.ts';

/** A small client for the management API, used by `dk access`, `dk scan` and friends. */
export class ApiClientError extends Error {
  readonly status: number;
  readonly exitCode: number;
  constructor(status: number, message: string, exitCode?: number) {
    super(message);
    this.name = 'ApiClientError';
    this.status = status;
    // Exit codes: 3 = refused (auth, permission, rate limit), 4 = other API error, 5 = API
    // unreachable, 6 = the API is not the pinned one (its certificate fingerprint differs).
    this.exitCode = exitCode ?? (status === 0 ? 5 : [401, 403, 429].includes(status) ? 3 : 4);
  }
}

export interface Credentials {
  api: string;
  token?: string;
  totp?: string;
  /** SHA-256 fingerprint (`AB:CD:…`) of the API's TLS certificate: the only one accepted (https only). */
  fingerprint?: string;
}

/** TLS verification failures a self-signed certificate causes, where pinning it is the fix. */
const UNTRUSTED = new Set(['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'ERR_TLS_CERT_ALTNAME_INVALID']);

function unreachable(c: Credentials, e: unknown): ApiClientError {
  if (e instanceof FingerprintMismatchError) return new ApiClientError(0, e.message, 6);
  const cause = (e as Error).cause instanceof Error ? (e as Error).cause as NodeJS.ErrnoException : null;
  const hint = cause?.code && UNTRUSTED.has(cause.code)
    ? ' (a gateway with mgmt_tls: self-signed printed its certificate\'s SHA-256 fingerprint at start: pass it with --api-fingerprint or DK_API_FINGERPRINT)'
    : '';
  return new ApiClientError(0, `cannot reach the API at ${c.api}: ${cause ? cause.message : (e as Error).message}${hint}`);
}

export async function callApi(c: Credentials, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const auth = c.token ? `Bearer ${c.token}` : c.totp ? `TOTP ${c.totp}` : null;
  if (!auth) throw new ApiClientError(401, 'no credentials: pass --token TOKEN (or set DK_TOKEN), or --totp USER:CODE');
  let res: Response;
  const url = new URL(path, c.api.endsWith('/') ? c.api : `${c.api}/`);
  const init = {
    method,
    headers: { authorization: auth, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : null,
    signal: AbortSignal.timeout(30_000),
  };
  try {
    res = c.fingerprint && url.protocol === 'https:' ? await pinnedFetch(url, init, c.fingerprint) : await fetch(url, init);
  } catch (e) {
    throw unreachable(c, e);
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
