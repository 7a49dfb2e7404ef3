import type { IncomingMessage } from 'node:http';
import { clientIp } from '../gateway/api/client-ip.ts';
import type { NetSet } from '../util/cidr.ts';
import { toV4IfMapped } from './addr-mangle.ts';

/**
 * The client of a WebSocket upgrade on a rendezvous or relay port: the socket's peer, or, when
 * that peer is a trusted proxy, the address its X-Forwarded-For (else X-Real-IP, as hbbs reads)
 * names. IPv4 in dotted form (try_into_v4 applied).
 */
export function wsClientIp(req: IncomingMessage, trusted: NetSet | null): string {
  const headers = new Headers();
  const xff = req.headers['x-forwarded-for'];
  const real = req.headers['x-real-ip'];
  const fwd = typeof xff === 'string' ? xff : typeof real === 'string' ? real : undefined;
  if (fwd !== undefined && fwd !== '') headers.set('x-forwarded-for', fwd);
  return toV4IfMapped(clientIp(req.socket.remoteAddress, headers, trusted));
}
