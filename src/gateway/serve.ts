import { createAdaptorServer } from '@hono/node-server';
import type { Server } from 'node:http';
import type { GatewayConfig } from '../config/gateway-config.ts';
import type { Logger } from '../util/log.ts';
import { buildApi } from './api/app.ts';
import { Gateway, type FirstRun } from './gateway.ts';

export interface RunningGateway {
  gateway: Gateway;
  http: Server;
  mgmtPort: number;
  servPort: number;
  first: FirstRun;
  stop(drainMs?: number): Promise<void>;
}

/** Starts a gateway and its management API. */
export async function startGateway(config: GatewayConfig, log: Logger): Promise<RunningGateway> {
  const gateway = new Gateway(config, log);
  const first = await gateway.start();
  const app = buildApi(gateway, log);
  // connectionsCheckingInterval: how often header/request deadlines are enforced (Node's default is 30 s).
  const http = createAdaptorServer({ fetch: app.fetch, serverOptions: { connectionsCheckingInterval: 1000, maxHeaderSize: 16 * 1024 } }) as Server;
  // Slow-loris protection: a request must arrive whole within these limits.
  http.headersTimeout = 10_000;
  http.requestTimeout = 15_000;
  http.keepAliveTimeout = 5_000;
  http.maxHeadersCount = 100;
  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen({ host: config.mgmt_bind ?? config.bind, port: config.mgmt_port }, () => resolve());
    });
  } catch (e) {
    await gateway.stop();
    throw e;
  }
  http.on('clientError', (_err, socket) => { if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'); else socket.destroy(); });
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
