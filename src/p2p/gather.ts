import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { toCandidate, undialable, type Candidate } from './candidate.ts';

/**
 * This side's LAN candidates: every address of its own interfaces of the given family, with the
 * port it punches from. Loopback, link-local and other undialable addresses are left out (the
 * peer could not use them). `interfaces` defaults to the machine's; tests pass their own.
 */
export function lanCandidates(port: number, family: 4 | 6 = 4, interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): Candidate[] {
  const out: Candidate[] = [];
  for (const list of Object.values(interfaces)) {
    for (const info of list ?? []) {
      if (info.internal || (family === 4 ? info.family !== 'IPv4' : info.family !== 'IPv6')) continue;
      if (undialable(info.address) !== undefined) continue;
      out.push(toCandidate('lan', info.address, port));
    }
  }
  return out;
}

/** All of this side's candidates: its public mapping as the coordinator observed it, then its LAN addresses. */
export function gatherCandidates(observed: Pick<Candidate, 'host' | 'port'> | undefined, localPort: number, family: 4 | 6 = 4, interfaces?: NodeJS.Dict<NetworkInterfaceInfo[]>): Candidate[] {
  const lan = lanCandidates(localPort, family, interfaces);
  return observed === undefined ? lan : [toCandidate('public', observed.host, observed.port), ...lan];
}
