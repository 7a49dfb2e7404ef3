import type { RunningGateway } from '../gateway/serve.ts';

/** What a first start prints once: the generated secrets and the exact next commands. */
export function firstRunBanner(g: RunningGateway, publicHost: string): string {
  const lines: string[] = [];
  const api = `http://${publicHost}:${g.mgmtPort}`;
  const backend = g.first.backend;
  const token = g.first.adminToken ?? '<your admin token>';
  lines.push('', 'DoorKeeper gateway is up.', `  agents connect to   ${publicHost}:${g.servPort}`, `  management API      ${api}`);
  if (g.first.adminToken) lines.push(`  admin token         ${g.first.adminToken}    (shown once; stored hashed)`);
  if (backend) lines.push(`  backend "${backend.name}" key   ${backend.key}`);
  lines.push('', 'Start an agent on a host inside the private network:');
  lines.push(`  npm run dk -- agent --gateway ${publicHost}:${g.servPort} --name ${backend?.name ?? 'NAME'} --key ${backend?.key ?? 'KEY'}`);
  lines.push('', 'Ask for access to its port 22, then connect to the access port it prints:');
  lines.push(`  npm run dk -- access ${backend?.name ?? 'NAME'} 22 --api ${api} --token ${token}`);
  lines.push(`  curl -H 'Authorization: Bearer ${token}' -d '{"backend":"${backend?.name ?? 'NAME'}","port":22}' ${api}/api/v1/access`);
  lines.push(`  ssh -p ACCESS_PORT user@${publicHost}`, '');
  return lines.join('\n');
}
