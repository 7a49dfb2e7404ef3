// The baseline for any userspace relay in Node: accept, dial, pipe both ways.
// Usage: node bench/relay.ts [--tls front|back KEY_DIR] LISTEN:TARGET [LISTEN:TARGET ...]
//
// With --tls, one side of a tunnel made of Node's own TLS and nothing else: the front dials its
// targets over TLS 1.3 with AES-256-GCM (the link's AEAD) and does not check the certificate; the
// back accepts TLS with KEY_DIR's key.pem and cert.pem. What Node's built-in crypto does with no
// framing, mux, acknowledgements or resume: the bench's reference for the encrypted link.
import { readFileSync } from 'node:fs';
import { connect as netConnect, createServer as netServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as tlsServer } from 'node:tls';
import { tuneProcessForRelaying } from '../src/util/process-tuning.ts';

// The same process settings as DoorKeeper's processes, so the ceiling is a fair one.
tuneProcessForRelaying();

const args = process.argv.slice(2);
const tls = args[0] === '--tls' ? { side: args[1], keyDir: args[2] } : null;
const pairs = tls ? args.slice(3) : args;
if ((tls && ((tls.side !== 'front' && tls.side !== 'back') || !tls.keyDir)) || pairs.length === 0) {
  process.stderr.write('usage: relay.ts [--tls front|back KEY_DIR] LISTEN:TARGET ...\n');
  process.exit(2);
}
const TLS = { minVersion: 'TLSv1.3', ciphersuites: 'TLS_AES_256_GCM_SHA384' } as const;

function dial(port: number): Socket {
  if (tls?.side === 'front') return tlsConnect({ host: '127.0.0.1', port, ...TLS, rejectUnauthorized: false }).setNoDelay(true);
  return netConnect({ host: '127.0.0.1', port, allowHalfOpen: true, noDelay: true });
}

function accepting(onSocket: (a: Socket) => void): ReturnType<typeof netServer> {
  if (tls?.side !== 'back') return netServer({ allowHalfOpen: true, noDelay: true }, onSocket);
  const key = { key: readFileSync(join(tls.keyDir!, 'key.pem')), cert: readFileSync(join(tls.keyDir!, 'cert.pem')) };
  return tlsServer({ ...key, ...TLS, allowHalfOpen: true }, (a) => onSocket(a.setNoDelay(true)));
}

let pending = 0;
for (const pair of pairs) {
  const [listenPort, targetPort] = pair.split(':').map(Number);
  const server = accepting((a) => {
    const b = dial(targetPort!);
    a.pipe(b).pipe(a);
    a.on('error', () => b.destroy());
    b.on('error', () => a.destroy());
  });
  pending++;
  server.listen(listenPort, '127.0.0.1', () => { if (--pending === 0) process.stdout.write('ready\n'); });
}
