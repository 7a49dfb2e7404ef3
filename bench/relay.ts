// The baseline for any userspace relay in Node: accept, dial, pipe both ways.
// Usage: node bench/relay.ts LISTEN:TARGET [LISTEN:TARGET ...]
import { connect, createServer } from 'node:net';
import { tuneProcessForRelaying } from '../src/util/process-tuning.ts';

// The same process settings as DoorKeeper's processes, so the ceiling is a fair one.
tuneProcessForRelaying();

let pending = 0;
for (const pair of process.argv.slice(2)) {
  const [listenPort, targetPort] = pair.split(':').map(Number);
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (a) => {
    const b = connect({ host: '127.0.0.1', port: targetPort!, allowHalfOpen: true, noDelay: true });
    a.pipe(b).pipe(a);
    a.on('error', () => b.destroy());
    b.on('error', () => a.destroy());
  });
  pending++;
  server.listen(listenPort, '127.0.0.1', () => { if (--pending === 0) process.stdout.write('ready\n'); });
}
