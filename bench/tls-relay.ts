// An encrypted tunnel made of Node's own TLS and nothing else: two processes, each piping bytes.
// The front accepts plain TCP and dials the back over TLS 1.3 (AES-256-GCM, the link's AEAD); the
// back accepts TLS and dials the target. What Node's built-in crypto does with no framing, no mux,
// no acknowledgements and no resume: the reference for the encrypted link.
// Usage: node bench/tls-relay.ts front|back KEY_DIR LISTEN:TARGET [LISTEN:TARGET ...]
// (KEY_DIR holds key.pem and cert.pem; the front does not check the back's certificate.)
import { readFileSync } from 'node:fs';
import { connect as netConnect, createServer as netServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as tlsServer } from 'node:tls';
import { tuneProcessForRelaying } from '../src/util/process-tuning.ts';

// The same process settings as DoorKeeper's processes and the plain relay.
tuneProcessForRelaying();

const [side, keyDir, ...pairs] = process.argv.slice(2);
if ((side !== 'front' && side !== 'back') || !keyDir || pairs.length === 0) {
  process.stderr.write('usage: tls-relay.ts front|back KEY_DIR LISTEN:TARGET ...\n');
  process.exit(2);
}
const TLS = { minVersion: 'TLSv1.3', ciphersuites: 'TLS_AES_256_GCM_SHA384' } as const;
const key = side === 'back' ? { key: readFileSync(join(keyDir, 'key.pem')), cert: readFileSync(join(keyDir, 'cert.pem')) } : {};

function pipeBoth(a: Socket, b: Socket): void {
  a.pipe(b).pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
}

let pending = 0;
for (const pair of pairs) {
  const [listenPort, targetPort] = pair.split(':').map(Number);
  const server = side === 'front'
    ? netServer({ allowHalfOpen: true, noDelay: true }, (a) => {
      pipeBoth(a, tlsConnect({ host: '127.0.0.1', port: targetPort!, ...TLS, rejectUnauthorized: false }).setNoDelay(true));
    })
    : tlsServer({ ...key, ...TLS, allowHalfOpen: true }, (a) => {
      pipeBoth(a.setNoDelay(true), netConnect({ host: '127.0.0.1', port: targetPort!, allowHalfOpen: true, noDelay: true }));
    });
  pending++;
  server.listen(listenPort, '127.0.0.1', () => { if (--pending === 0) process.stdout.write('ready\n'); });
}
