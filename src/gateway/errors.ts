/**
 * Errors the gateway reports to API callers: a stable code, an HTTP status, a message that says
 * what to do. docs/api.md lists them.
 */
export class ApiError extends Error {
  readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 429 | 503 | 504;
  readonly code: string;
  constructor(status: ApiError['status'], code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** The gateway was asked for something it has only once it serves (a bug in the caller, not input). */
export class GatewayStateError extends Error {
  readonly code = 'DK_GATEWAY_STATE';
  constructor(what: string) {
    super(what);
    this.name = 'GatewayStateError';
  }
}

export const badRequest = (msg: string): ApiError => new ApiError(400, 'bad_request', msg);
export const unauthorized = (): ApiError => new ApiError(401, 'unauthorized', 'missing or invalid credentials: send "Authorization: Bearer TOKEN" or "Authorization: TOTP USER:CODE"');
export const forbidden = (msg: string): ApiError => new ApiError(403, 'forbidden', msg);
export const notFound = (what: string): ApiError => new ApiError(404, 'not_found', `${what} not found`);
