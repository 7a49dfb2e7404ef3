#!/usr/bin/env node
import { packageVersion } from '../util/version.ts';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import qrcode from 'qrcode-terminal';
import { Agent } from '../agent/agent.ts';
import type { GatewayKeyMismatchError } from '../agent/errors.ts';
import { loadAgentConfig, type AgentFlags } from '../config/agent-config.ts';
import { ConfigError } from '../config/errors.ts';
import { loadGatewayConfig, type GatewayFlags } from '../config/gateway-config.ts';
import { secretFlag } from '../config/secret-file.ts';
import { startGateway } from '../gateway/serve.ts';
import { UserStore } from '../gateway/users.ts';
import { openDb } from '../store/db.ts';
import { dataDirError } from '../store/data-dir.ts';
import { makeLogger } from '../util/log.ts';
import { ApiClientError, callApi, type Credentials } from './api-client.ts';
import { firstRunBanner } from './banner.ts';
import { agentTemplate, gatewayTemplate } from './templates.ts';
import { Forwarder } from '../connect/forwarder.ts';
import { decodeKey, encodeKey, loadOrCreateStaticKey } from '../link/keys.ts';
import { splitHostPort } from '../config/agent-config.ts';
import { tuneProcessForRelaying } from '../util/process-tuning.ts';

function decodeKeyOrConfigError(text: string): Buffer {
  try {
    return decodeKey(text);
  } catch (e) {
    throw new ConfigError(`--gateway-key: ${(e as Error).message}`);
  }
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** The gateway's link key in a data dir (made if absent); a data dir that cannot hold it is a configuration error. */
function gatewayKeyIn(dataDir: string): ReturnType<typeof loadOrCreateStaticKey> {
  try {
    return loadOrCreateStaticKey(dataDir);
  } catch (e) {
    throw (e as NodeJS.ErrnoException).code ? dataDirError(dataDir, e) : new ConfigError(`--data-dir ${dataDir}: ${(e as Error).message}`);
  }
}

/** Runs `stop` once on SIGINT or SIGTERM, then exits 0. */
function onShutdown(stop: (signal: string) => Promise<unknown> | void): void {
  const handler = (signal: string): void => void Promise.resolve(stop(signal)).then(() => process.exit(0));
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}
const program = new Command('dk')
  .description('DoorKeeper: controlled access to hosts behind NAT.\nRun `dk gateway` on a public host, `dk agent` inside the private network, `dk access` to get a port.')
  .version(packageVersion())
  // Usage errors end as exit code 2 like every configuration error (commander's own is 1), on one
  // line: commander's message, with a "did you mean" on the same line, and where to look next.
  .exitOverride()
  .configureOutput({ outputError: (text, write) => write(`dk: ${text.replace(/^error: /, '').trim().split('\n').join(' ')} (run with --help for usage)\n`) });

program.command('gateway')
  .description('run the gateway: agents dial serv_port, people ask mgmt_port for access')
  .option('-c, --config <file>', 'YAML config file (see `dk init gateway`)')
  .option('--serv-port <n>', 'port agents connect to (default 35357)')
  .option('--mgmt-port <n>', 'management API port (default 3535)')
  .option('--data-dir <dir>', 'state directory: SQLite database (default ./dk-data)')
  .option('--backend <name=key>', 'a backend agents may log in as (repeatable; --backend-file keeps the key off the command line)', collect)
  .option('--backend-file <name=file>', 'a backend whose key is in FILE (repeatable)', collect)
  .option('--admin-token <token>', 'use this admin API token instead of a generated one (or DK_ADMIN_TOKEN, or --admin-token-file)')
  .option('--admin-token-file <file>', 'read the admin API token from FILE')
  .option('--bind <addr>', 'address to listen on (default 0.0.0.0)')
  .addOption(new Option('--public-host <host>', 'host name to print in the first-start instructions').default('127.0.0.1'))
  .action(async (o: GatewayFlags & { publicHost: string }) => {
    tuneProcessForRelaying();
    const warnings: string[] = [];
    const config = loadGatewayConfig(o, process.env, (w) => warnings.push(w));
    const log = makeLogger(config.log_level, 'gateway');
    for (const w of warnings) log.warn(w);
    const g = await startGateway(config, log);
    if (g.first.adminToken || g.first.backend) process.stdout.write(firstRunBanner(g, o.publicHost) + '\n');
    else process.stdout.write(`DoorKeeper gateway: agents on :${g.servPort}, API on :${g.mgmtPort} (data in ${config.data_dir}); link public key ${encodeKey(g.gateway.linkKey.publicRaw)}\n`);
    onShutdown((signal) => {
      log.info({ signal }, 'shutting down: draining sessions for up to 5 s');
      return g.stop(5000);
    });
  });

program.command('agent')
  .description('run an agent inside the private network: dials the gateway, opens allowed LAN targets')
  .option('-c, --config <file>', 'YAML config file (see `dk init agent`)')
  .option('--gateway <host:port>', "the gateway's serv_port address")
  .option('--name <name>', 'backend name agreed with the gateway')
  .option('--key <key>', 'backend key agreed with the gateway (or DK_KEY, or --key-file)')
  .option('--key-file <file>', 'read the backend key from FILE')
  .option('--allow <cidr[:ports]>', 'a network this agent may dial, e.g. 192.168.1.0/24:22,3389 (repeatable; default: this host only)', collect)
  .option('--gateway-key <key>', "the gateway's public key (`dk pubkey` on the gateway): the encrypted link talks to no other")
  .option('--plain', "use the seed's plain DK protocol on TCP instead of the encrypted, resumable link")
  .action((o: AgentFlags) => {
    tuneProcessForRelaying();
    const warnings: string[] = [];
    const config = loadAgentConfig(o, process.env, (w) => warnings.push(w));
    const log = makeLogger(config.log_level, 'agent');
    for (const w of warnings) log.warn(w);
    const agent = new Agent(config, log);
    // The agent retries an unreachable gateway forever; it gives up only on a gateway key that
    // stays wrong, and has stopped by the time it says so.
    agent.once('fatal', (e: GatewayKeyMismatchError) => {
      process.stderr.write(`dk: ${e.message}\n`);
      process.exit(e.exitCode);
    });
    agent.start();
    onShutdown(() => agent.stop());
  });

interface ApiOpts { api: string; token?: string; tokenFile?: string; totp?: string; json?: boolean }
const apiOptions = (c: Command): Command => c
  .addOption(new Option('--api <url>', 'management API URL').env('DK_API').default('http://127.0.0.1:3535'))
  .addOption(new Option('--token <token>', 'API token (or --token-file)').env('DK_TOKEN'))
  .option('--token-file <file>', 'read the API token from FILE')
  .addOption(new Option('--totp <user:code>', 'authenticate with a TOTP code instead of a token'))
  .option('--json', 'print JSON for scripts');
/** A secret file others may read is worth a word on stderr; these commands have no logger. */
const warnLine = (w: string): void => void process.stderr.write(`dk: warning: ${w}\n`);
/** The API token: --token-file FILE, --token T or DK_TOKEN. DK_TOKEN gives way to --token-file; --token with it is an error. */
function tokenOf(o: { token?: string; tokenFile?: string }, cmd: Command, warn: (w: string) => void): string | undefined {
  const given = cmd.getOptionValueSource('token') === 'env' && o.tokenFile !== undefined ? undefined : o.token;
  return secretFlag(given, o.tokenFile, '--token', warn);
}
function creds(o: ApiOpts, cmd: Command): Credentials {
  const token = tokenOf(o, cmd, warnLine);
  return { api: o.api, ...(token ? { token } : {}), ...(o.totp ? { totp: o.totp } : {}) };
}

apiOptions(program.command('access')
  .description('ask the gateway for access; prints the access port to connect to')
  .argument('<backend>', 'backend name')
  .argument('<port>', 'target port')
  .argument('[host]', 'target host IP in the backend LAN (default: the agent host)'))
  .action(async (backend: string, port: string, host: string | undefined, o: ApiOpts, cmd: Command) => {
    const body: Record<string, unknown> = { backend, port: Number(port) };
    if (host) body.host = host;
    const r = await callApi(creds(o, cmd), 'POST', 'api/v1/access', body);
    if (o.json) return void process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    const apiHost = new URL(o.api).hostname;
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

program.command('pubkey')
  .description("print the gateway's link public key (made on first use), for agents and dk connect to pin")
  .option('--data-dir <dir>', 'gateway data dir', './dk-data')
  .action((o: { dataDir: string }) => {
    process.stdout.write(encodeKey(gatewayKeyIn(o.dataDir).publicRaw) + '\n');
  });

program.command('connect')
  .description('forward a local port to a target behind a backend, over the encrypted link: connections survive network drops')
  .argument('<backend>', 'backend name')
  .argument('<port>', 'target port')
  .argument('[host]', 'target host IP in the backend LAN (default: the agent host)')
  .requiredOption('-L, --listen <[bind:]port>', 'local port to listen on, e.g. 2222 or 127.0.0.1:2222')
  .requiredOption('--gateway <host:port>', "the gateway's serv_port address")
  .addOption(new Option('--gateway-key <key>', "the gateway's public key (`dk pubkey` on the gateway)").env('DK_GATEWAY_KEY').makeOptionMandatory())
  .addOption(new Option('--token <token>', 'API token (or DK_TOKEN, or --token-file)').env('DK_TOKEN'))
  .option('--token-file <file>', 'read the API token from FILE')
  .action(async (backend: string, port: string, host: string | undefined, o: { listen: string; gateway: string; gatewayKey: string; token?: string; tokenFile?: string }, cmd: Command) => {
    tuneProcessForRelaying();
    const log = makeLogger('info', 'connect');
    const token = tokenOf(o, cmd, (w) => log.warn(w));
    if (!token) throw new ConfigError('dk connect needs an API token: --token-file FILE, DK_TOKEN, or --token TOKEN');
    const { host: bind, port: localPort } = o.listen.lastIndexOf(':') > 0 ? splitHostPort(o.listen) : { host: '127.0.0.1', port: Number(o.listen) };
    if (!Number.isInteger(localPort) || localPort < 0 || localPort > 65535) throw new ConfigError(`-L ${o.listen}: expected [BIND:]PORT`);
    const targetPort = Number(port);
    if (!Number.isInteger(targetPort) || targetPort < 1 || targetPort > 65535) throw new ConfigError(`port ${port}: expected 1-65535`);
    const gatewayKey = decodeKeyOrConfigError(o.gatewayKey);
    const gw = splitHostPort(o.gateway);
    const fwd = new Forwarder({
      gatewayHost: gw.host, gatewayPort: gw.port, gatewayKey, token, backend, port: targetPort,
      ...(host ? { host } : {}), bind, localPort, log,
    });
    const actual = await fwd.listen();
    process.stdout.write(`dk connect: ${bind}:${actual} → ${backend} ${host ?? '127.0.0.1'}:${targetPort} via ${o.gateway} (encrypted; connections survive network drops)\n`);
    onShutdown(() => fwd.close());
  });

program.command('init')
  .description('write a commented config file with fresh secrets')
  .argument('<role>', 'gateway or agent')
  .option('-o, --output <file>', 'file to write (default: dk-gateway.yaml / dk-agent.yaml)')
  .option('--gateway <host:port>', 'agent: the gateway address', '127.0.0.1:35357')
  .option('--name <name>', 'agent: backend name', 'home')
  .option('--key <key>', 'agent: backend key (default: a fresh one; give the same to the gateway)')
  .option('--gateway-key <key>', "agent: the gateway's public key (`dk pubkey` on the gateway)")
  .option('--data-dir <dir>', "agent: read the gateway's public key from this gateway data dir (when run on the gateway host)")
  .option('--plain', "agent: use the seed's plain protocol instead of the encrypted link")
  .option('--force', 'overwrite an existing file')
  .action((role: string, o: { output?: string; gateway: string; name: string; key?: string; gatewayKey?: string; dataDir?: string; plain?: boolean; force?: boolean }) => {
    if (role !== 'gateway' && role !== 'agent') throw new ConfigError('dk init: role must be "gateway" or "agent"');
    let gatewayKey: string | null = null;
    if (role === 'agent' && !o.plain) {
      if (o.gatewayKey) gatewayKey = encodeKey(decodeKeyOrConfigError(o.gatewayKey));
      else if (o.dataDir) gatewayKey = encodeKey(gatewayKeyIn(o.dataDir).publicRaw);
      else throw new ConfigError('dk init agent: pass --gateway-key KEY (print it on the gateway with `dk pubkey`), --data-dir of the gateway, or --plain');
    }
    const file = o.output ?? `dk-${role}.yaml`;
    if (existsSync(file) && !o.force) throw new ConfigError(`${file} exists; pass --force to overwrite it`);
    const key = o.key ?? randomBytes(18).toString('base64url');
    const text = role === 'gateway' ? gatewayTemplate(o.name, key, `dk_${randomBytes(24).toString('base64url')}`) : agentTemplate(o.gateway, o.name, key, gatewayKey);
    writeFileSync(file, text, { mode: 0o600 });
    process.stdout.write(`wrote ${file}\n`);
  });

const user = program.command('user').description('manage API users in a gateway data dir (works while the gateway runs)');
user.command('add')
  .argument('<name>')
  .option('--data-dir <dir>', 'gateway data dir', './dk-data')
  .option('--admin', 'may do everything')
  .option('--backends <list>', 'comma-separated backends this user may open ("*" = all)', '')
  .option('--hosts <list>', 'comma-separated CIDRs of target hosts ("*" = all)', '*')
  .option('--ports <list>', 'target ports, e.g. 22,3389,8000-8100 ("*" = all)', '*')
  .option('--totp', 'also enrol a TOTP authenticator (prints a QR code)')
  .action((name: string, o: { dataDir: string; admin?: boolean; backends: string; hosts: string; ports: string; totp?: boolean }) => {
    const users = new UserStore(openDb(o.dataDir));
    if (users.byName(name)) throw new ConfigError(`user "${name}" exists`);
    const split = (s: string): string[] => s.split(',').map((x) => x.trim()).filter(Boolean);
    const r = users.create(name, { admin: !!o.admin, totp: !!o.totp, permissions: { backends: split(o.backends), hosts: split(o.hosts), ports: o.ports } });
    process.stdout.write(`user ${name} created\napi token: ${r.token}   (shown once)\n`);
    if (r.totpUri) {
      process.stdout.write(`TOTP enrolment: ${r.totpUri}\nScan with an authenticator app, then authenticate with --totp ${name}:CODE\n`);
      qrcode.generate(r.totpUri, { small: true }, (qr) => process.stdout.write(qr + '\n'));
    }
  });
user.command('list').option('--data-dir <dir>', 'gateway data dir', './dk-data').action((o: { dataDir: string }) => {
  for (const u of new UserStore(openDb(o.dataDir)).list()) {
    process.stdout.write(`${u.name}${u.admin ? ' (admin)' : ''} backends=${u.permissions.backends.join(',') || '-'} hosts=${u.permissions.hosts.join(',')} ports=${u.permissions.ports}${u.hasTotp ? ' totp' : ''}\n`);
  }
});
user.command('remove').argument('<name>').option('--data-dir <dir>', 'gateway data dir', './dk-data').action((name: string, o: { dataDir: string }) => {
  if (!new UserStore(openDb(o.dataDir)).remove(name)) throw new ConfigError(`no user "${name}"`);
  process.stdout.write(`user ${name} removed\n`);
});

try {
  await program.parseAsync(process.argv);
} catch (e) {
  process.exit(exitCodeFor(e));
}

/**
 * Prints why the command failed, on one line of stderr, and returns its exit code (README lists
 * them): 2 for usage and configuration, 3-5 for the API, 1 for anything unexpected.
 */
function exitCodeFor(e: unknown): number {
  if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2; // commander printed the message (or the help)
  if (e instanceof ConfigError || e instanceof ApiClientError) {
    process.stderr.write(`dk: ${e.message}\n`);
    return e.exitCode;
  }
  const err = e as Error;
  if (process.env.DK_DEBUG) process.stderr.write(`${err.stack ?? String(e)}\n`);
  else process.stderr.write(`dk: ${err.message ?? String(e)} (an unexpected error; DK_DEBUG=1 prints where it came from)\n`);
  return 1;
}
