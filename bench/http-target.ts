// The HTTP target for the request-rate figures: a minimal Node server answering every request with 2 bytes.
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const body = Buffer.from('ok');
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 30_000;
server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
