import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { LinkStream } from '../../src/link/index.ts';
import { Pattern } from '../helpers/fault-proxy.ts';

const CHUNK = 256 * 1024;

/** Writes `size` pattern bytes with backpressure and ends; the sha256 of what was written. */
export async function sendPattern(s: LinkStream, p: Pattern, size: number): Promise<string> {
  const h = createHash('sha256');
  for (let off = 0; off < size && !s.destroyed; off += CHUNK) {
    const c = p.slice(off, Math.min(CHUNK, size - off));
    h.update(c);
    if (!s.write(c)) await once(s, 'drain');
  }
  s.end();
  return h.digest('hex');
}

/** Reads to the end: sha256, byte count, and the offset of the first byte that breaks the pattern (-1: none). */
export function receivePattern(s: LinkStream, p: Pattern, progress?: (n: number) => void): Promise<{ hash: string; bytes: number; bad: number }> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let n = 0;
    let bad = -1;
    s.on('data', (c: Buffer) => {
      if (bad < 0) bad = p.check(n, c);
      h.update(c);
      n += c.length;
      progress?.(n);
    });
    s.once('end', () => resolve({ hash: h.digest('hex'), bytes: n, bad }));
    s.once('error', reject);
  });
}

/** Waits until `cond` holds, polling; bounded. */
export async function until(cond: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A socket to 127.0.0.1:port; errors are the test's to observe through 'close'. */
export function dialTo(port: number): Socket {
  const s = connect({ host: '127.0.0.1', port, noDelay: true });
  s.on('error', () => undefined);
  return s;
}

/** A loopback TCP server whose connections are handed to `onConn`; close() also destroys them. */
export async function tcpServer(onConn: (s: Socket) => void): Promise<{ port: number; server: Server; conns: Set<Socket>; close(): void }> {
  const conns = new Set<Socket>();
  const server = createServer((s) => {
    conns.add(s);
    s.on('error', () => undefined);
    s.on('close', () => conns.delete(s));
    onConn(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    port, server, conns,
    close() {
      for (const c of conns) c.destroy();
      server.close();
    },
  };
}

/**
 * A one-connection forwarder to `target` that counts the bytes going up (client → server) and
 * holds back what comes down until release(n) lets n more bytes through (all, without n): the
 * test decides when the migration's answers reach the client, and can cut the old transport in
 * between.
 */
export async function gate(target: number): Promise<{
  port: number; up: () => number; release: (n?: number) => void; cut: () => void; close: () => void;
}> {
  let up = 0;
  let allowed = 0;
  let held = Buffer.alloc(0);
  let client: Socket | null = null;
  let server: Socket | null = null;
  const flush = (): void => {
    const n = Math.min(allowed, held.length);
    if (n === 0) return;
    client?.write(held.subarray(0, n));
    held = held.subarray(n);
    allowed -= n;
  };
  const srv = await tcpServer((c) => {
    client = c;
    const s = dialTo(target);
    server = s;
    c.on('data', (b: Buffer) => { up += b.length; s.write(b); });
    s.on('data', (b: Buffer) => { held = Buffer.concat([held, b]); flush(); });
    c.on('close', () => s.destroy());
    s.on('close', () => c.destroy());
  });
  const cut = (): void => {
    client?.destroy();
    server?.destroy();
  };
  return {
    port: srv.port,
    up: () => up,
    release(n = Infinity) {
      allowed += n;
      flush();
    },
    cut,
    close() {
      cut();
      srv.close();
    },
  };
}

/** Reads exactly `n` bytes from `s` (bounded). */
export function readN(s: LinkStream, n: number, timeoutMs = 30_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    let len = 0;
    const done = (err: Error | null): void => {
      clearTimeout(timer);
      s.off('data', onData);
      s.pause();
      if (err) reject(err);
      else resolve(Buffer.concat(got));
    };
    const onData = (c: Buffer): void => {
      got.push(c);
      len += c.length;
      if (len >= n) done(len === n ? null : new Error(`read ${len} bytes, wanted ${n}`));
    };
    const timer = setTimeout(() => done(new Error(`timed out reading ${n} bytes (${len} so far)`)), timeoutMs);
    s.on('data', onData);
    s.resume();
  });
}

/** Bytes go both ways on whatever transport the pair is attached to, and both sides acknowledge them. */
export async function roundTrip(c: LinkStream, s: LinkStream, tag: string): Promise<void> {
  const a = Buffer.from(`up ${tag} `.repeat(1000));
  const b = Buffer.from(`down ${tag} `.repeat(1000));
  const gotA = readN(s, a.length);
  const gotB = readN(c, b.length);
  c.write(a);
  s.write(b);
  if (!(await gotA).equals(a)) throw new Error(`${tag}: the server received other bytes`);
  if (!(await gotB).equals(b)) throw new Error(`${tag}: the client received other bytes`);
  await until(() => c.unacked === 0 && s.unacked === 0, `${tag}: acknowledgements both ways`, 30_000);
}
