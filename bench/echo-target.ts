// The echo target for round trips and open sessions, in its own process so that the benchmark's
// client side and the target side of 10,000 sessions do not share one open-file limit.
import { createServer } from 'node:net';

const server = createServer({ noDelay: true }, (s) => {
  s.on('error', () => undefined);
  s.pipe(s);
});
server.listen(Number(process.argv[2]), '127.0.0.1', 1024, () => process.stdout.write('ready\n'));
