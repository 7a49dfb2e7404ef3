import { once } from 'node:events';
import { request } from 'node:http';
import { isIP } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';

/** The API presented a certificate other than the pinned one: nothing was sent to it. */
export class FingerprintMismatchError extends Error {
  readonly code = 'fingerprint_mismatch';
  readonly presented: string;
  readonly pinned: string;
  constructor(api: string, presented: string, pinned: string) {
    super(`the API at ${api} presented a certificate with SHA-256 fingerprint ${presented}, not the pinned ${pinned} (--api-fingerprint or DK_API_FINGERPRINT): `
      + 'nothing was sent. If the gateway\'s certificate was replaced on purpose, pin the new fingerprint it printed at start; otherwise something between you and the gateway is answering for it');
    this.name = 'FingerprintMismatchError';
    this.presented = presented;
    this.pinned = pinned;
  }
}

/** The most of an answer body taken in (an audit listing is the largest honest one). */
const MAX_BODY = 64 * 1024 * 1024;

/**
 * Opens TLS to the URL's host and checks the certificate's SHA-256 fingerprint against `pin`
 * before a byte of the request exists: the pin replaces CA and host name checks (a self-signed
 * certificate passes if it is the pinned one; any other certificate fails, whoever signed it).
 */
async function connectPinned(url: URL, pin: string, signal: AbortSignal): Promise<TLSSocket> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const socket = connect({
    host, port: Number(url.port || 443), rejectUnauthorized: false, ALPNProtocols: ['http/1.1'],
    ...(isIP(host) ? {} : { servername: host }),
  });
  try {
    await once(socket, 'secureConnect', { signal });
  } catch (e) {
    socket.destroy();
    throw e;
  }
  const presented = socket.getPeerX509Certificate()?.fingerprint256 ?? '(none)';
  if (presented !== pin) {
    socket.destroy();
    throw new FingerprintMismatchError(url.origin, presented, pin);
  }
  return socket;
}

/**
 * fetch() for an https URL whose certificate is pinned by fingerprint: HTTP/1.1 on a TLS
 * connection checked by connectPinned, one request per connection. Rejects like fetch (a
 * TypeError whose cause says why) when the API cannot be reached, and with
 * FingerprintMismatchError when it is not the pinned one.
 */
export async function pinnedFetch(url: URL, init: { method: string; headers: Record<string, string>; body: string | null; signal: AbortSignal }, pin: string): Promise<Response> {
  let socket: TLSSocket;
  try {
    socket = await connectPinned(url, pin, init.signal);
  } catch (e) {
    if (e instanceof FingerprintMismatchError) throw e;
    throw new TypeError('fetch failed', { cause: e });
  }
  return new Promise<Response>((resolve, reject) => {
    const fail = (e: unknown): void => {
      socket.destroy();
      reject(new TypeError('fetch failed', { cause: e }));
    };
    const onAbort = (): void => fail(init.signal.reason);
    init.signal.addEventListener('abort', onAbort, { once: true });
    const req = request({
      method: init.method, path: `${url.pathname}${url.search}`, createConnection: () => socket,
      headers: { host: url.host, connection: 'close', ...init.headers, ...(init.body !== null ? { 'content-length': String(Buffer.byteLength(init.body)) } : {}) },
    }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) fail(new Error(`answer over ${MAX_BODY} bytes`));
        else chunks.push(c);
      });
      res.on('error', fail);
      res.on('end', () => {
        init.signal.removeEventListener('abort', onAbort);
        socket.destroy();
        const status = res.statusCode ?? 500;
        const body = status === 204 || status === 304 ? null : Buffer.concat(chunks);
        resolve(new Response(body, { status, headers: { 'content-type': String(res.headers['content-type'] ?? '') } }));
      });
    });
    req.on('error', fail);
    req.end(init.body ?? undefined);
  });
}
