// The baseline for any userspace relay in Node: accept, dial, pipe both ways.
import { connect, createServer } from 'node:net';

const [listenPort, targetPort] = process.argv.slice(2).map(Number);
const server = createServer({ allowHalfOpen: true, noDelay: true }, (a) => {
  const b = connect({ host: '127.0.0.1', port: targetPort!, allowHalfOpen: true, noDelay: true });
  a.pipe(b).pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
});
server.listen(listenPort, '127.0.0.1', () => process.stdout.write('ready\n'));
