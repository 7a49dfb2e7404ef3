import type { RunningGateway } from '../gateway/serve.ts';
import { encodeKey } from '../link/keys.ts';
import { dkCommand } from './invocation.ts';

/** What a first start prints once: the generated secrets and the exact next commands. */
export function firstRunBanner(g: RunningGateway, publicHost: string): string {
  const lines: string[] = [];
  const dk = dkCommand();
  const api = `${g.mgmtTls ? 'https' : 'http'}://${publicHost}:${g.mgmtPort}`;
  // The CLI pins the API's certificate by its fingerprint; curl by its public key (-k skips the
  // CA check that a self-signed certificate cannot pass; the pin still must match).
  const pin = g.mgmtTls ? ` --api-fingerprint ${g.mgmtTls.fingerprint}` : '';
  const curlPin = g.mgmtTls?.selfSigned ? ` -k --pinnedpubkey sha256//${g.mgmtTls.spki}` : '';
  const backend = g.first.backend;
  const token = g.first.adminToken ?? '<your admin token>';
  lines.push('', 'DoorKeeper gateway is up.', `  agents connect to   ${publicHost}:${g.servPort}`, `  management API      ${api}`);
  if (g.mgmtTls) lines.push(`  API certificate     SHA-256 ${g.mgmtTls.fingerprint}    (${tlsNote(g)})`);
  if (g.first.adminToken) lines.push(`  admin token         ${g.first.adminToken}    (shown once; stored hashed)`);
  if (backend) lines.push(`  backend "${backend.name}" key   ${backend.key}`);
  const pub = encodeKey(g.gateway.linkKey.publicRaw);
  lines.push(`  link public key     ${pub}    (agents and dk connect pin it; \`dk pubkey\` prints it again)`);
  lines.push('', 'Start an agent on a host inside the private network:');
  lines.push(`  ${dk} agent --gateway ${publicHost}:${g.servPort} --gateway-key ${pub} --name ${backend?.name ?? 'NAME'} --key ${backend?.key ?? 'KEY'}`);
  lines.push('', 'Ask for access to its port 22, then connect to the access port it prints:');
  lines.push(`  ${dk} access ${backend?.name ?? 'NAME'} 22 --api ${api}${pin} --token ${token}`);
  lines.push(`  curl${curlPin} -H 'Authorization: Bearer ${token}' -d '{"backend":"${backend?.name ?? 'NAME'}","port":22}' ${api}/api/v1/access`);
  lines.push(`  ssh -p ACCESS_PORT user@${publicHost}`);
  lines.push('', 'Or forward a local port over the encrypted link (bound to the token, survives network drops):');
  lines.push(`  ${dk} connect ${backend?.name ?? 'NAME'} 22 -L 2222 --gateway ${publicHost}:${g.servPort} --gateway-key ${pub} --token ${token}`);
  lines.push('  ssh -p 2222 user@127.0.0.1', '');
  return lines.join('\n');
}

function tlsNote(g: RunningGateway): string {
  return g.mgmtTls?.selfSigned ? `self-signed, kept in ${g.mgmtTls.certFile}; dk pins it with --api-fingerprint` : `from ${g.mgmtTls?.certFile}`;
}

/** The one line a start that made nothing prints; with TLS on the management port, the certificate's fingerprint. */
export function startLine(g: RunningGateway, dataDir: string): string {
  const api = g.mgmtTls ? `API on :${g.mgmtPort} (https; certificate SHA-256 ${g.mgmtTls.fingerprint})` : `API on :${g.mgmtPort}`;
  return `DoorKeeper gateway: agents on :${g.servPort}, ${api} (data in ${dataDir}); link public key ${encodeKey(g.gateway.linkKey.publicRaw)}`;
}
