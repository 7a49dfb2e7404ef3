import { once } from 'node:events';
import { createServer, connect, type Server } from 'node:net';
import { connectLink, generateKeyPair, LinkServer, type ConnectOptions, type LinkServerOptions, type LinkStream } from '../../src/link/index.ts';
import { FaultProxy } from '../helpers/fault-proxy.ts';

export interface Rig {
  key: ReturnType<typeof generateKeyPair>;
  server: LinkServer;
  tcp: Server;
  port: number;
  proxy: FaultProxy | null;
  streams: LinkStream[];
  connect(o?: Partial<ConnectOptions>): Promise<LinkStream>;
  /** Connects a client and waits for its stream on the server: both ends of one link session. */
  pair(o?: Partial<ConnectOptions>): Promise<{ c: LinkStream; s: LinkStream }>;
  close(): void;
}

/** A LinkServer on loopback (optionally behind a fault proxy) and a way to connect clients to it. */
export async function rig(o: { server?: Partial<LinkServerOptions>; proxySeed?: number } = {}): Promise<Rig> {
  const key = generateKeyPair();
  const streams: LinkStream[] = [];
  const clients: LinkStream[] = [];
  const waiting: ((s: LinkStream) => void)[] = [];
  const server = new LinkServer({
    key, detachTimeoutMs: 10_000, ...o.server,
    onStream: (s) => { streams.push(s); s.on('error', () => undefined); waiting.shift()?.(s); },
  });
  const tcp = createServer((sock) => server.handle(sock, Buffer.alloc(0)));
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  const port = (tcp.address() as { port: number }).port;
  const proxy = o.proxySeed === undefined ? null : await new FaultProxy(port, o.proxySeed).listen();
  const nextStream = (): Promise<LinkStream> => new Promise((r) => waiting.push(r));
  const connectClient = async (c: Partial<ConnectOptions> = {}): Promise<LinkStream> => {
    const s = await connectLink({
      host: '127.0.0.1', port: proxy ? proxy.port : port, serverKey: key.publicRaw,
      ...(proxy ? { dial: () => connect({ host: '127.0.0.1', port: proxy.port }) } : {}), ...c,
    });
    clients.push(s);
    return s;
  };
  return {
    key, server, tcp, port, proxy, streams,
    connect: connectClient,
    pair: async (c = {}) => {
      const srv = nextStream();
      const client = await connectClient(c);
      return { c: client, s: await srv };
    },
    close() {
      for (const c of clients) { c.on('error', () => undefined); c.destroy(); }
      server.close(); tcp.close(); proxy?.close();
    },
  };
}
