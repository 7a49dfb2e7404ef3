import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../../config/errors.ts';
import { loadGatewayConfig } from '../../config/gateway-config.ts';
import { secretFlag } from '../../config/secret-file.ts';
import { encodeKey } from '../../link/keys.ts';
import { decodeKeyOrConfigError, gatewayKeyIn, warnLine } from '../common.ts';
import { agentTemplate, gatewayTemplate } from '../templates.ts';

interface InitOpts {
  output?: string;
  dir: string;
  gateway?: string;
  name?: string;
  key?: string;
  keyFile?: string;
  gatewayKey?: string;
  dataDir?: string;
  gatewayConfig?: string;
  plain?: boolean;
  force?: boolean;
}

const DEFAULT_NAME = 'home';
const DEFAULT_GATEWAY = '127.0.0.1:35357';

/**
 * `dk init`: commented config files with fresh secrets. With no role it writes a gateway config
 * and the agent config that matches it (same backend name and key, the gateway's public key,
 * made in the data dir the gateway config names); `dk init gateway` and `dk init agent` write one
 * each for two hosts, and an agent config only ever takes the key the gateway has.
 */
export function initCommand(program: Command): void {
  program.command('init')
    .description('write matching gateway and agent config files (or one of them) with fresh secrets')
    .argument('[role]', 'gateway or agent (default: both, matching)')
    .option('--dir <dir>', 'both: the directory to write dk-gateway.yaml and dk-agent.yaml in', '.')
    .option('-o, --output <file>', 'gateway or agent: file to write (default: dk-gateway.yaml / dk-agent.yaml)')
    .option('--gateway <host:port>', `agent: the gateway's serv_port address (default ${DEFAULT_GATEWAY})`)
    .option('--name <name>', `backend name (default ${DEFAULT_NAME})`)
    .option('--key <key>', 'backend key (gateway and both: default a fresh one; agent: the key the gateway config has)')
    .option('--key-file <file>', 'read the backend key from FILE')
    .option('--gateway-key <key>', "agent: the gateway's public key (`dk init gateway` and `dk pubkey` print it)")
    .option('--data-dir <dir>', "gateway and both: data_dir to write (relative to the config file; default ./dk-data); agent: read the gateway's public key from this gateway data dir")
    .option('--gateway-config <file>', "agent: take the backend name, key and the gateway's public key from this gateway config (on the gateway host)")
    .option('--plain', "agent: use the seed's plain protocol instead of the encrypted link")
    .option('--force', 'overwrite existing files')
    .addHelpText('after', `
Examples:
  dk init                                  # dk-gateway.yaml + dk-agent.yaml that work together
  dk gateway -c dk-gateway.yaml            # then, on the agent host (or here):
  dk agent -c dk-agent.yaml

  dk init gateway                          # two hosts: prints the \`dk init agent\` line to run on the agent host
  dk init agent --gateway gw.example.org:35357 --gateway-key KEY --name home --key-file home.key`)
    .action((role: string | undefined, o: InitOpts) => {
      if (role !== undefined && role !== 'gateway' && role !== 'agent') throw new ConfigError('dk init: role must be "gateway" or "agent", or nothing for both');
      if (role === undefined && o.output) throw new ConfigError('dk init: -o names one file; to write both, give --dir DIR (or init gateway / init agent with -o each)');
      if (role === 'gateway') initGateway(o);
      else if (role === 'agent') initAgent(o);
      else initPair(o);
    });
}

function refuseOverwrite(files: string[], force: boolean | undefined): void {
  const there = files.filter((f) => existsSync(f));
  if (there.length > 0 && !force) throw new ConfigError(`${there.join(' and ')} ${there.length > 1 ? 'exist' : 'exists'}; pass --force to overwrite`);
}

const write = (file: string, text: string): void => writeFileSync(file, text, { mode: 0o600 });
const freshKey = (): string => randomBytes(18).toString('base64url');
const freshToken = (): string => `dk_${randomBytes(24).toString('base64url')}`;

/** The gateway's link key pair, made (if absent) in the data dir that the config at `file` names. */
function gatewayPublicKey(file: string, dataDir: string): { pub: string; dir: string } {
  const dir = resolve(dirname(file), dataDir);
  return { pub: encodeKey(gatewayKeyIn(dir).publicRaw), dir };
}

function initPair(o: InitOpts): void {
  const gwFile = join(o.dir, 'dk-gateway.yaml');
  const agFile = join(o.dir, 'dk-agent.yaml');
  refuseOverwrite([gwFile, agFile], o.force);
  if (o.gatewayKey || o.gatewayConfig) throw new ConfigError('dk init (both files): the gateway key is made here; --gateway-key and --gateway-config are for `dk init agent`');
  const name = o.name ?? DEFAULT_NAME;
  const key = secretFlag(o.key, o.keyFile, '--key', warnLine) ?? freshKey();
  const dataDir = o.dataDir ?? './dk-data';
  const { pub, dir } = gatewayPublicKey(gwFile, dataDir);
  write(gwFile, gatewayTemplate(name, key, freshToken(), dataDir));
  write(agFile, agentTemplate(o.gateway ?? DEFAULT_GATEWAY, name, key, o.plain ? null : pub));
  process.stdout.write(`wrote ${gwFile} and ${agFile}: backend "${name}", one key, the gateway's public key ${pub}\n`
    + `the gateway's link key is in ${join(dir, 'link_key')}\n`
    + `run: dk gateway -c ${gwFile}\n`
    + `and: dk agent -c ${agFile}   (on another host: copy the file there and set gateway: to the gateway's address)\n`);
}

function initGateway(o: InitOpts): void {
  const file = o.output ?? 'dk-gateway.yaml';
  refuseOverwrite([file], o.force);
  const name = o.name ?? DEFAULT_NAME;
  const key = secretFlag(o.key, o.keyFile, '--key', warnLine) ?? freshKey();
  const dataDir = o.dataDir ?? './dk-data';
  const { pub } = gatewayPublicKey(file, dataDir);
  write(file, gatewayTemplate(name, key, freshToken(), dataDir));
  process.stdout.write(`wrote ${file}; the gateway's public key is ${pub}\n`
    + 'on the agent host, write the matching agent config (the key is a secret: better put it in a file, mode 600, and pass --key-file FILE):\n'
    + `  dk init agent --gateway GATEWAY_HOST:35357 --gateway-key ${pub} --name ${name} --key ${key}\n`);
}

function initAgent(o: InitOpts): void {
  const file = o.output ?? 'dk-agent.yaml';
  refuseOverwrite([file], o.force);
  let name = o.name;
  let key = secretFlag(o.key, o.keyFile, '--key', warnLine);
  let gatewayKey: string | null = null;
  let gateway = o.gateway;
  if (o.gatewayConfig) {
    const g = loadGatewayConfig({ config: o.gatewayConfig }, {});
    const names = Object.keys(g.backends);
    name ??= names.length === 1 ? names[0] : undefined;
    if (!name) throw new ConfigError(`dk init agent: ${o.gatewayConfig} has ${names.length === 0 ? 'no backends' : `backends ${names.join(', ')}`}; pick one with --name`);
    const b = g.backends[name];
    if (!b) throw new ConfigError(`dk init agent: ${o.gatewayConfig} has no backend "${name}"${names.length > 0 ? ` (it has ${names.join(', ')})` : ''}`);
    if (key !== undefined && key !== b.key) throw new ConfigError(`dk init agent: --key differs from backend "${name}"'s key in ${o.gatewayConfig}; leave --key out`);
    key = b.key;
    if (!o.plain) gatewayKey = encodeKey(gatewayKeyIn(g.data_dir).publicRaw);
    gateway ??= `127.0.0.1:${g.serv_port}`;
  } else {
    // A fresh key here could never match the gateway's: the agent's key comes from the gateway.
    if (key === undefined) {
      throw new ConfigError('dk init agent: give the backend key the gateway has (--key-file FILE, or --key KEY; `dk init gateway` prints the command), '
        + 'or --gateway-config FILE on the gateway host; or run `dk init` with no role to write both files at once');
    }
    if (!o.plain) {
      if (o.gatewayKey) gatewayKey = encodeKey(decodeKeyOrConfigError(o.gatewayKey));
      else if (o.dataDir) gatewayKey = encodeKey(gatewayKeyIn(o.dataDir).publicRaw);
      else throw new ConfigError('dk init agent: pass --gateway-key KEY (print it on the gateway with `dk pubkey`), --data-dir of the gateway, or --plain');
    }
  }
  write(file, agentTemplate(gateway ?? DEFAULT_GATEWAY, name ?? DEFAULT_NAME, key, gatewayKey));
  process.stdout.write(`wrote ${file}: backend "${name ?? DEFAULT_NAME}" via ${gateway ?? DEFAULT_GATEWAY}\nrun: dk agent -c ${file}\n`);
}
