import { getRequestListener } from '@hono/node-server';
import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { normalizeIp } from '../protocol/address.ts';
import { mgmtTlsMode, type GatewayConfig } from '../config/gateway-config.ts';
import type { Logger } from '../util/log.ts';
import { buildApi } from './api/app.ts';
import { Gateway, type FirstRun } from './gateway.ts';
import { GatewayMetrics } from './metrics.ts';
import { listenOn } from './listen.ts';
import { loadMgmtTls, type MgmtTls } from './mgmt-tls.ts';

export interface RunningGateway {
  gateway: Gateway;
  http: Server;
  mgmtPort: number;
  servPort: number;
  first: FirstRun;
  /** The management port's certificate when it speaks TLS (mgmt_tls), else null: plain HTTP. */
  mgmtTls: MgmtTls | null;
  stop(drainMs?: number): Promise<void>;
}

/** Methods whose routes take a request body; any other request must come without one. */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/**
 * Requests refused from their headers alone: a declared body over `max` bytes on any route, or a
 * body on a method that takes none (Hono's body limit applies only to bodies a route reads; an
 * unread one would otherwise still be taken in). A chunked body on a POST is limited while it
 * streams, by the API's bodyLimit.
 */
function bodyRefusal(req: IncomingMessage, max: number): { status: number; code: string; message: string } | null {
  const length = req.headers['content-length'] === undefined ? null : Number(req.headers['content-length']);
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if (!BODY_METHODS.has(req.method ?? '') && (chunked || (length !== null && length > 0))) {
    return { status: 400, code: 'bad_request', message: `${req.method} takes no request body` };
  }
  if (length !== null && length > max) return { status: 413, code: 'body_too_large', message: `request body over ${max} bytes` };
  return null;
}

/**
 * Caps the management port's concurrent connections, overall and per source address, so that
 * idle or slow connections from one address cannot take the API from everyone else. A connection
 * over a cap is closed at once, before a byte is read.
 */
function limitConnections(http: Server, max: number, perIp: number, onRefuse: () => void): void {
  const byIp = new Map<string, number>();
  let total = 0;
  http.on('connection', (socket: Socket) => {
    const ip = normalizeIp(socket.remoteAddress);
    const held = byIp.get(ip) ?? 0;
    if (total >= max || held >= perIp) {
      onRefuse();
      socket.destroy();
      return;
    }
    total++;
    byIp.set(ip, held + 1);
    socket.once('close', () => {
      total--;
      const n = (byIp.get(ip) ?? 1) - 1;
      if (n > 0) byIp.set(ip, n);
      else byIp.delete(ip);
    });
  });
}
type Api = ReturnType<typeof buildApi>;

/** Starts a gateway and its management API. */
export async function startGateway(config: GatewayConfig, log: Logger): Promise<RunningGateway> {
  // Certificate files are read before any port is taken (a bad file is a configuration error like
  // a bad key); a self-signed certificate is made once the data dir is open, below.
  const tlsMode = mgmtTlsMode(config);
  let tls = tlsMode.mode === 'files' ? await loadMgmtTls(tlsMode, config.data_dir) : null;
  const metrics = new GatewayMetrics();
  // Both ports are taken before the gateway opens its state (Gateway#start), so a port in use or a
  // wrong address fails before first-run secrets are made. Until then the API answers 503.
  let app: Api | null = null;
  const fetch: Api['fetch'] = (req, env, ctx) => app
    ? app.fetch(req, env, ctx)
    : Response.json({ error: { code: 'starting', message: 'the gateway is starting; retry in a moment' } }, { status: 503 });
  // connectionsCheckingInterval: how often header/request deadlines are enforced (Node's default is 30 s).
  const listener = getRequestListener(fetch);
  const onRequest: RequestListener = (req, res) => {
    const refusal = bodyRefusal(req, config.max_body);
    if (refusal) {
      // Answered before a byte of the body is read; "Connection: close" ends the socket after the
      // answer, so the unread body is never taken in.
      res.writeHead(refusal.status, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify({ error: { code: refusal.code, message: refusal.message } }));
      metrics.apiRequests.inc({ method: req.method ?? '', status: String(refusal.status) });
      return;
    }
    void listener(req, res);
  };
  const httpOpts = { connectionsCheckingInterval: 1000, maxHeaderSize: 16 * 1024 };
  // TLS: a handshake must finish within 10 s too (Node's default is 120 s), like the headers below.
  const https = tlsMode.mode === 'off' ? null
    : createHttpsServer({ ...httpOpts, handshakeTimeout: 10_000, minVersion: 'TLSv1.2', ...(tls ? { cert: tls.cert, key: tls.key } : {}) }, onRequest);
  const http: Server = https ?? createServer(httpOpts, onRequest);
  // Slow-loris protection: a request must arrive whole within these limits.
  http.headersTimeout = 10_000;
  http.requestTimeout = 15_000;
  http.keepAliveTimeout = 5_000;
  http.maxHeadersCount = 100;
  limitConnections(http, config.mgmt_max_connections, config.mgmt_max_per_ip, () => metrics.connectionsRefused.inc({ reason: 'mgmt_connection_cap' }));
  http.on('clientError', (_err, socket) => { if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'); else socket.destroy(); });
  await listenOn(http, config.mgmt_bind ?? config.bind, config.mgmt_port, { port: 'mgmt_port', portFlag: '--mgmt-port', bind: config.mgmt_bind ? 'mgmt_bind' : 'bind' });
  let gateway: Gateway;
  try {
    gateway = await Gateway.start(config, log, { metrics });
  } catch (e) {
    http.close();
    throw e;
  }
  if (tlsMode.mode === 'self-signed' && https) {
    let made: MgmtTls | null;
    try {
      made = await loadMgmtTls(tlsMode, config.data_dir);
    } catch (e) {
      http.close();
      await gateway.stop();
      throw e;
    }
    // Until now a TLS handshake failed (no certificate yet), as a request would have got 503 "starting".
    if (made) https.setSecureContext({ cert: made.cert, key: made.key });
    tls = made;
  }
  app = buildApi(gateway.api(), log);
  const mgmtPort = (http.address() as { port: number }).port;
  const mgmtBind = config.mgmt_bind ?? config.bind;
  if (!tls && !/^(127\.|::1$|::ffff:127\.|localhost$)/.test(mgmtBind)) {
    log.warn({ mgmt_bind: mgmtBind }, 'the management API is plain HTTP on an address other than loopback: API tokens and TOTP codes cross the network in clear text; set mgmt_tls (--mgmt-tls self-signed needs nothing else) or mgmt_bind 127.0.0.1');
  }
  log.info({ mgmt_port: mgmtPort, tls: tls ? (tls.selfSigned ? 'self-signed' : tls.certFile) : 'off', ...(tls ? { fingerprint: tls.fingerprint } : {}) }, 'management API listening');
  return {
    gateway, http, mgmtPort, servPort: gateway.servPort, first: gateway.first, mgmtTls: tls,
    async stop(drainMs = 0) {
      http.close();
      http.closeAllConnections();
      await gateway.stop(drainMs);
    },
  };
}
