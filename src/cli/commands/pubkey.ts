import type { Command } from 'commander';
import { ConfigError } from '../../config/errors.ts';
import { encodeKey } from '../../link/keys.ts';
import { loadOrCreateKeyFiles } from '../../rendezvous/keys.ts';
import { gatewayKeyIn } from '../common.ts';

/** `dk pubkey`: the gateway's link public key, or with --rendezvous the RustDesk Key. */
export function pubkeyCommand(program: Command): void {
  program.command('pubkey')
    .description("print the gateway's link public key (made on first use), for agents and dk connect to pin")
    .option('--data-dir <dir>', 'gateway data dir', './dk-data')
    .option('--rendezvous', "print the RustDesk Key instead: id_ed25519.pub in the data dir (made like hbbs makes it if absent)")
    .option('--agent', "print an agent's key for end-to-end dk connect links instead (agent_link_key in the agent's --data-dir), for dk connect --agent-key")
    .addHelpText('after', '\nExamples:\n  dk pubkey --data-dir /var/lib/doorkeeper\n  dk pubkey --rendezvous --data-dir /var/lib/doorkeeper   # the Key for RustDesk clients\n  dk pubkey --agent --data-dir /var/lib/dk-agent          # on an agent host: what dk connect --agent-key pins')
    .action(async (o: { dataDir: string; rendezvous?: boolean; agent?: boolean }) => {
      if (o.agent) return void process.stdout.write(encodeKey(gatewayKeyIn(o.dataDir, 'agent_link_key').publicRaw) + '\n');
      if (!o.rendezvous) return void process.stdout.write(encodeKey(gatewayKeyIn(o.dataDir).publicRaw) + '\n');
      try {
        const k = await loadOrCreateKeyFiles(o.dataDir);
        process.stdout.write(k.keys.publicKeyBase64 + '\n');
      } catch (e) {
        throw new ConfigError(`--data-dir ${o.dataDir}: ${(e as Error).message}`);
      }
    });
}
