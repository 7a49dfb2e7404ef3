import type { Command } from 'commander';
import { encodeKey } from '../../link/keys.ts';
import { gatewayKeyIn } from '../common.ts';

/** `dk pubkey`: the gateway's link public key. */
export function pubkeyCommand(program: Command): void {
  program.command('pubkey')
    .description("print the gateway's link public key (made on first use), for agents and dk connect to pin")
    .option('--data-dir <dir>', 'gateway data dir', './dk-data')
    .action((o: { dataDir: string }) => {
      process.stdout.write(encodeKey(gatewayKeyIn(o.dataDir).publicRaw) + '\n');
    });
}
