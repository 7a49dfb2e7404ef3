import { createAdaptorServer } from '@hono/node-server';
import type { Server } from 'node:http';
import type { GatewayConfig } from '../config/gateway-config.ts';
import type { Logger } from '../util/log.ts';
import { buildApi } from './api/app.ts';
import { Gateway, type FirstRun } from './gateway.ts';
import { listenOn } from './listen.ts';

export interface RunningGateway {
  gateway: Gateway;
  http: Server;
  mgmtPort: number;
  servPort: number;
  first: FirstRun;
  stop(drainMs?: number): Promise<void>;
}

type Api = ReturnType<typeof buildApi>;

/** Starts a gateway and its management API. */
export async function startGateway(config: GatewayConfig, log: Logger): Promise<RunningGateway> {
  const gateway = new Gateway(config, log);
  // Both ports are taken before the gateway opens its state (Gateway#start), so a port in use or a
  // wrong address fails before first-run secrets are made. Until then the API answers 503.
  let app: Api | null = null;
  const fetch: Api['fetch'] = (req, env, ctx) => app
    ? app.fetch(req, env, ctx)
    : Response.json({ error: { code: 'starting', message: 'the gateway is starting; retry in a moment' } }, { status: 503 });
  // connectionsCheckingInterval: how often header/request deadlines are enforced (Node's default is 30 s).
  const http = createAdaptorServer({ fetch, serverOptions: { connectionsCheckingInterval: 1000, maxHeaderSize: 16 * 1024 } }) as Server;
  // Slow-loris protection: a request must arrive whole within these limits.
  http.headersTimeout = 10_000;
  http.requestTimeout = 15_000;
  http.keepAliveTimeout = 5_000;
  http.maxHeadersCount = 100;
  http.on('clientError', (_err, socket) => { if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'); else socket.destroy(); });
  await listenOn(http, config.mgmt_bind ?? config.bind, config.mgmt_port, { port: 'mgmt_port', portFlag: '--mgmt-port', bind: config.mgmt_bind ? 'mgmt_bind' : 'bind' });
  let first: FirstRun;
  try {
    first = await gateway.start();
  } catch (e) {
    http.close();
    throw e;
  }
  app = buildApi(gateway, log);
  const mgmtPort = (http.address() as { port: number }).port;
  log.info({ mgmt_port: mgmtPort }, 'management API listening');
  return {
    gateway, http, mgmtPort, servPort: gateway.servPort, first,
    async stop(drainMs = 0) {
      http.close();
      http.closeAllConnections();
      await gateway.stop(drainMs);
    },
  };
}
