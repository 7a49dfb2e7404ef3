import type { Command } from 'commander';
import { Agent } from '../../agent/agent.ts';
import type { GatewayKeyMismatchError, GatewayRefusedError } from '../../agent/errors.ts';
import { loadAgentConfig, type AgentFlags } from '../../config/agent-config.ts';
import { logFormat, makeLogger } from '../../util/log.ts';
import { tuneProcessForRelaying } from '../../util/process-tuning.ts';
import { collect, logFormatOption, onShutdown } from '../common.ts';

/** `dk agent`: runs an agent; it retries its gateway forever. */
export function agentCommand(program: Command): void {
  program.command('agent')
    .description('run an agent inside the private network: dials the gateway, opens allowed LAN targets')
    .option('-c, --config <file>', 'YAML config file (see `dk init agent`)')
    .option('--gateway <host:port>', "the gateway's serv_port address")
    .option('--name <name>', 'backend name agreed with the gateway')
    .option('--key <key>', 'backend key agreed with the gateway (or DK_KEY, or --key-file)')
    .option('--key-file <file>', 'read the backend key from FILE')
    .option('--allow <cidr[:ports]>', 'a network this agent may dial, e.g. 192.168.1.0/24:22,3389 (repeatable; default: this host only)', collect)
    .option('--gateway-key <key>', "the gateway's public key (`dk pubkey` on the gateway): the encrypted link talks to no other")
    .option('--data-dir <dir>', 'where the agent keeps its key for end-to-end dk connect links (default: a new key each start)')
    .option('--plain', "use the seed's plain DK protocol on TCP instead of the encrypted, resumable link")
    .addOption(logFormatOption())
    .action((o: AgentFlags & { logFormat?: string }) => {
      tuneProcessForRelaying();
      const warnings: string[] = [];
      const config = loadAgentConfig(o, process.env, (w) => warnings.push(w));
      const log = makeLogger(config.log_level, 'agent', logFormat(o.logFormat, process.stderr.isTTY === true));
      for (const w of warnings) log.warn(w);
      const agent = new Agent(config, log);
      // The agent retries an unreachable gateway forever; it gives up only when the gateway answers
      // that something is wrong — its key is not the pinned one (6), or it refuses our name and
      // key (3) — three times in a row, and has stopped by the time it says so.
      agent.once('fatal', (e: GatewayKeyMismatchError | GatewayRefusedError) => {
        process.stderr.write(`dk: ${e.message}\n`);
        process.exit(e.exitCode);
      });
      agent.start();
      onShutdown(() => agent.stop());
    });
}
