import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ConfigError } from '../../config/errors.ts';
import { encodeKey } from '../../link/keys.ts';
import { decodeKeyOrConfigError, gatewayKeyIn } from '../common.ts';
import { agentTemplate, gatewayTemplate } from '../templates.ts';

/** `dk init`: commented config files with fresh secrets. */
export function initCommand(program: Command): void {
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
}
