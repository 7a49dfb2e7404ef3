import type { Server } from 'node:net';
import { ConfigError } from '../config/errors.ts';

/** Which settings a listener comes from, so its failure can name them. */
export interface ListenKeys {
  /** The port's key and flag, e.g. serv_port and --serv-port. */
  port: string;
  portFlag: string;
  /** The address's key, e.g. bind or mgmt_bind. */
  bind: string;
}

/**
 * Listens on host:port, or fails with a ConfigError that names the setting to change: a port in
 * use, an address this host does not have, a port it may not open. Anything else is passed on.
 */
export function listenOn(server: Server, host: string, port: number, keys: ListenKeys): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => reject(explain(e, host, port, keys));
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function explain(e: NodeJS.ErrnoException, host: string, port: number, k: ListenKeys): Error {
  const at = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  switch (e.code) {
    case 'EADDRINUSE':
      return new ConfigError(`${k.port} ${port}: ${at} is already in use by another program; pick another port with ${k.portFlag} (or ${k.port}), or stop that program`);
    case 'EADDRNOTAVAIL':
      return new ConfigError(`${k.bind} ${host}: this host has no such address; use one of its own addresses, or 0.0.0.0 for all of them`);
    case 'EACCES':
    case 'EPERM':
      return new ConfigError(`${k.port} ${port}: not allowed to listen on ${at} (ports below 1024 need root or CAP_NET_BIND_SERVICE); pick another with ${k.portFlag}`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ConfigError(`${k.bind} ${host}: not an address this host can resolve; give an IP address`);
    default:
      return e;
  }
}
