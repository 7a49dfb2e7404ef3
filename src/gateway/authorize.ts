import { NetSet } from '../util/cidr.ts';
import { PortSet } from '../util/port-range.ts';
import type { User } from './users.ts';

/**
 * What a user wants to do, as far as it is known: a backend, and (when the action names them) a
 * target host and port. Fields left out are not checked: listing backends names only a backend, a
 * scan a backend and a port (its answers are then filtered host by host).
 */
export interface Action {
  backend: string;
  host?: string;
  port?: number;
}

/**
 * The one authorization rule, for every path: the API's access and scan, and each `dk connect`
 * session. Returns null when the user may do it, or the reason (a sentence for a 403) when not.
 * Admins may do everything; others need the backend by name ('*' = all), the host in their CIDRs
 * and the port in their port set.
 */
export function authorize(user: User, a: Action): string | null {
  if (user.admin) return null;
  const p = user.permissions;
  if (!p.backends.includes('*') && !p.backends.includes(a.backend)) return `user "${user.name}" may not use backend "${a.backend}"`;
  if (a.host !== undefined && !new NetSet(p.hosts).has(a.host)) return `user "${user.name}" may not open host ${a.host} on ${a.backend}`;
  if (a.port !== undefined && !PortSet.parse(p.ports).has(a.port)) return `user "${user.name}" may not open port ${a.port}`;
  return null;
}
