import type { Command } from 'commander';
import { callApi } from '../api-client.ts';
import { apiOptions, creds, warnLine, type ApiOpts } from '../common.ts';

/** `dk access` and `dk scan`: API calls for a port and for a LAN scan. */
export function accessCommands(program: Command): void {
  apiOptions(program.command('access')
    .description('ask the gateway for access; prints the access port to connect to')
    .argument('<backend>', 'backend name')
    .argument('<port>', 'target port')
    .argument('[host]', 'target host IP in the backend LAN (default: the agent host)'))
    .action(async (backend: string, port: string, host: string | undefined, o: ApiOpts, cmd: Command) => {
      const body: Record<string, unknown> = { backend, port: Number(port) };
      if (host) body.host = host;
      const c = creds(o, cmd);
      const r = await callApi(c, 'POST', 'api/v1/access', body);
      // The grant is made, but it may not work yet: the backend is offline, or its agent's allowlist is unknown.
      for (const w of Array.isArray(r.warnings) ? r.warnings as unknown[] : []) warnLine(String(w));
      if (o.json) return void process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      const apiHost = new URL(c.api).hostname;
      process.stdout.write(`access port ${String(r.access_port)} → ${backend} ${String(r.host)}:${String(r.port)} for ${String(r.client_ip)}\n`
        + `connect before ${String(r.start_before)}; the grant ends at ${String(r.expires_at)}\n`
        + `e.g. ssh -p ${String(r.access_port)} user@${apiHost}\n`);
    });

  apiOptions(program.command('scan')
    .description("ask a backend's agent which LAN hosts have a port open")
    .argument('<backend>', 'backend name')
    .argument('<port>', 'port to look for'))
    .action(async (backend: string, port: string, o: ApiOpts, cmd: Command) => {
      const r = await callApi(creds(o, cmd), 'GET', `api/v1/backends/${encodeURIComponent(backend)}/scan?port=${encodeURIComponent(port)}`);
      if (o.json) return void process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      const hosts = r.hosts as string[];
      process.stdout.write(hosts.length > 0 ? hosts.map((h) => `${h}:${port}`).join('\n') + '\n' : `no host in ${backend}'s lan_nets has port ${port} open\n`);
      if (r.refused) process.stderr.write(`the agent refused the query: port ${port} is outside its lan_nets\n`);
      if (r.truncated) process.stderr.write('the list is truncated: the agent scans at most scan_max_hosts hosts\n');
      if (!r.complete) process.stderr.write('the scan timed out; the list may be incomplete\n');
    });
}
