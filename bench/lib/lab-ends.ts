/**
 * Both ends of the dk connect path benchmark (bench/p2p-path.ts), run inside the NAT lab:
 *   node lab-ends.ts serve --host H --port P                         (the target, in LAN B)
 *   node lab-ends.ts up|down --host H --port P --bytes N             (one stream one way)
 *   node lab-ends.ts ping --host H --port P --rounds N [--warmup W]  (1-byte round trips)
 * Each connection starts with a 9-byte header from the client: a mode byte ('U', 'D' or 'P')
 * and a 64-bit count. 'U': the client sends N bytes, the target answers one byte once it has all
 * of them. 'D': the target sends N bytes and ends. 'P': the target echoes every byte; the client
 * sends one, waits for it, N times. A connection that sends no header is held open until the peer
 * closes it (what dk connect --stdio opens while the bench waits for the direct path).
 * The client prints one JSON line: {"type":"result","mode","bytes","ms"} for up/down,
 * {"type":"result","mode":"ping","us":[…]} (each round trip in µs, sorted) for ping, or
 * {"type":"error","message"} and exit code 1. Every program has a hard lifetime.
 */
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

const LIFETIME_MS = 30 * 60_000;
setTimeout(() => { console.log(JSON.stringify({ type: 'fatal', message: 'lifetime over' })); process.exit(3); }, LIFETIME_MS).unref();

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { host: { type: 'string' }, port: { type: 'string' }, bytes: { type: 'string', default: '0' }, rounds: { type: 'string', default: '0' }, warmup: { type: 'string', default: '100' } },
});
const out = (msg: object): void => console.log(JSON.stringify(msg));
const CHUNK = 256 * 1024;
const HEADER = 9;
/** The bytes sent: random, so that nothing on the way could compress them. */
const block = Buffer.alloc(CHUNK);
for (let i = 0; i < CHUNK; i++) block[i] = (i * 2654435761) >>> 24;

async function sendBytes(s: Socket, n: number): Promise<void> {
  let left = n;
  while (left > 0) {
    const k = Math.min(CHUNK, left);
    if (!s.write(k === CHUNK ? block : block.subarray(0, k))) await once(s, 'drain');
    left -= k;
  }
}

function header(mode: 'U' | 'D' | 'P', n: number): Buffer {
  const h = Buffer.alloc(HEADER);
  h.write(mode, 0, 'latin1');
  h.writeBigUInt64BE(BigInt(n), 1);
  return h;
}

function serve(s: Socket): void {
  s.setNoDelay(true);
  s.on('error', () => undefined);
  let head = Buffer.alloc(0);
  const onData = (c: Buffer): void => {
    head = Buffer.concat([head, c]);
    if (head.length < HEADER) return;
    s.off('data', onData);
    const mode = String.fromCharCode(head[0]!);
    const n = Number(head.readBigUInt64BE(1));
    const rest = head.subarray(HEADER);
    if (mode === 'U') {
      let got = rest.length;
      const check = (): void => { if (got >= n) { s.off('data', count); s.end(Buffer.from([1])); } };
      const count = (d: Buffer): void => { got += d.length; check(); };
      s.on('data', count);
      check();
    } else if (mode === 'D') {
      void sendBytes(s, n).then(() => s.end(), () => s.destroy());
    } else if (mode === 'P') {
      if (rest.length > 0) s.write(rest);
      s.on('data', (d: Buffer) => s.write(d));
    } else {
      s.destroy();
    }
  };
  s.on('data', onData);
}

async function client(mode: string): Promise<void> {
  const s = connect({ host: values.host!, port: Number(values.port), noDelay: true });
  s.on('error', (e) => { out({ type: 'error', message: e.message }); process.exit(1); });
  await once(s, 'connect');
  const bytes = Number(values.bytes);
  if (mode === 'up') {
    const t0 = performance.now();
    s.write(header('U', bytes));
    const acked = once(s, 'data');
    await sendBytes(s, bytes);
    await acked;
    out({ type: 'result', mode, bytes, ms: performance.now() - t0 });
  } else if (mode === 'down') {
    const t0 = performance.now();
    let got = 0;
    s.on('data', (d: Buffer) => { got += d.length; });
    s.write(header('D', bytes));
    await once(s, 'end');
    if (got !== bytes) throw new Error(`received ${got} of ${bytes} bytes`);
    out({ type: 'result', mode, bytes, ms: performance.now() - t0 });
  } else if (mode === 'ping') {
    const rounds = Number(values.rounds);
    const warmup = Number(values.warmup);
    s.write(header('P', 0));
    const us: number[] = [];
    const one = Buffer.from([7]);
    let resolveByte: (() => void) | null = null;
    s.on('data', (d: Buffer) => { for (let i = 0; i < d.length; i++) { const r = resolveByte; resolveByte = null; r?.(); } });
    for (let i = 0; i < warmup + rounds; i++) {
      const t0 = performance.now();
      await new Promise<void>((r) => { resolveByte = r; s.write(one); });
      if (i >= warmup) us.push(Math.round((performance.now() - t0) * 1000));
    }
    out({ type: 'result', mode, us: us.sort((a, b) => a - b) });
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  s.destroy();
  process.exit(0);
}

if (positionals[0] === 'serve') {
  const server = createServer({ allowHalfOpen: true }, serve);
  server.listen(Number(values.port), values.host, () => out({ type: 'listening' }));
} else {
  client(positionals[0] ?? '').catch((e: unknown) => { out({ type: 'error', message: (e as Error).message }); process.exit(1); });
}
