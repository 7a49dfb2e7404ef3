import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { connected } from '../../src/util/connect.ts';

/** A TCP server on loopback; returns it and its port. */
export async function listen(handler: (s: Socket) => void, host = '127.0.0.1', opts: { allowHalfOpen?: boolean } = {}): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: opts.allowHalfOpen ?? true }, handler);
  server.listen(0, host);
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

export function echoServer(host = '127.0.0.1'): Promise<{ server: Server; port: number }> {
  return listen((s) => { s.on('error', () => undefined); s.pipe(s); }, host);
}

export function dial(port: number, localAddress = '127.0.0.1', host = '127.0.0.1'): Promise<Socket> {
  const s = connect({ host, port, localAddress, allowHalfOpen: true });
  s.on('error', () => undefined); // a reset after connect is the test's to observe ('close'), not a crash
  return connected(s);
}

/** Reads everything until EOF or close; returns the bytes and whether it ended with EOF. */
export function readAll(s: Socket, timeoutMs = 10_000): Promise<{ data: Buffer; eof: boolean; error: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let eof = false;
    let error = false;
    const t = setTimeout(() => { s.destroy(); }, timeoutMs);
    s.on('data', (c: Buffer) => chunks.push(c));
    const done = (): void => { clearTimeout(t); resolve({ data: Buffer.concat(chunks), eof, error }); };
    s.on('end', () => { eof = true; done(); });
    s.on('error', () => { error = true; });
    s.on('close', done);
  });
}

/** HTTP JSON request from a chosen local address (fetch cannot bind one). */
export function http(method: string, url: string, opts: { token?: string; body?: string | object; localAddress?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; json: any; text: string }> {
  return new Promise((resolve, reject) => {
    const body = opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    const req = request(url, {
      method,
      localAddress: opts.localAddress,
      headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}), ...opts.headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json: unknown = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode ?? 0, json, text });
      });
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

/**
 * A deterministic, position-keyed byte stream: byte i depends on (seed, i), so a receiver can
 * check every offset without holding the whole stream.
 */
export function patternChunk(seed: number, offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) {
    const x = offset + i;
    b[i] = (x * 31 + (x >>> 8) * 7 + (x >>> 16) * 13 + seed) & 0xff;
  }
  return b;
}

export function sha256(): ReturnType<typeof createHash> {
  return createHash('sha256');
}

export async function waitFor(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Writes `total` pattern bytes with backpressure, hashing what it sent; ends the socket after if asked. */
export async function sendPattern(s: Socket, seed: number, total: number, end = true): Promise<string> {
  const h = sha256();
  const CH = 256 * 1024;
  for (let off = 0; off < total; off += CH) {
    const c = patternChunk(seed, off, Math.min(CH, total - off));
    h.update(c);
    if (!s.write(c)) await once(s, 'drain');
  }
  if (end) s.end();
  return h.digest('hex');
}

/** Reads to EOF, hashing; also checks the stream against the pattern at every offset if `seed` is given. */
export function hashUntilEnd(s: Socket, seed?: number): Promise<{ hash: string; bytes: number; firstBadOffset: number }> {
  return new Promise((resolve, reject) => {
    const h = sha256();
    let n = 0;
    let bad = -1;
    s.on('data', (c: Buffer) => {
      h.update(c);
      if (seed !== undefined && bad < 0) {
        const want = patternChunk(seed, n, c.length);
        if (!want.equals(c)) for (let i = 0; i < c.length; i++) if (want[i] !== c[i]) { bad = n + i; break; }
      }
      n += c.length;
    });
    s.once('end', () => resolve({ hash: h.digest('hex'), bytes: n, firstBadOffset: bad }));
    s.once('error', reject);
  });
}
