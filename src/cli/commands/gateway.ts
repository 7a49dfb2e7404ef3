import { Option, type Command } from 'commander';
import { loadGatewayConfig, type GatewayFlags } from '../../config/gateway-config.ts';
import { startGateway } from '../../gateway/serve.ts';
import { logFormat, makeLogger } from '../../util/log.ts';
import { tuneProcessForRelaying } from '../../util/process-tuning.ts';
import { firstRunBanner, startLine } from '../banner.ts';
import { rendezvousBanner } from '../rendezvous-banner.ts';
import { collect, logFormatOption, onShutdown } from '../common.ts';

/** `dk gateway`: runs the gateway until SIGINT/SIGTERM. */
export function gatewayCommand(program: Command): void {
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
    .option('--rendezvous-port <n>', 'also serve RustDesk clients: rendezvous on N (UDP+TCP), N-1, N+2 and relay on N+1, N+3 (e.g. 21116; or DK_RENDEZVOUS_PORT)')
    .addOption(new Option('--mgmt-tls <mode>', 'TLS on the management port: "self-signed" makes a certificate in the data dir (its fingerprint is printed; the CLI pins it), "off" is plain HTTP').choices(['off', 'self-signed']))
    .option('--mgmt-tls-cert <file>', 'TLS on the management port with this PEM certificate (and --mgmt-tls-key)')
    .option('--mgmt-tls-key <file>', 'the PEM private key of --mgmt-tls-cert')
    .addOption(new Option('--public-host <host>', 'host name to print in the first-start instructions').default('127.0.0.1'))
    .addOption(logFormatOption())
    .action(async (o: GatewayFlags & { publicHost: string; logFormat?: string }) => {
      tuneProcessForRelaying();
      const warnings: string[] = [];
      const config = loadGatewayConfig(o, process.env, (w) => warnings.push(w));
      const log = makeLogger(config.log_level, 'gateway', logFormat(o.logFormat, process.stderr.isTTY === true));
      for (const w of warnings) log.warn(w);
      const g = await startGateway(config, log);
      if (g.first.adminToken || g.first.backend) process.stdout.write(firstRunBanner(g, o.publicHost) + '\n');
      else process.stdout.write(startLine(g, config.data_dir) + '\n');
      if (g.gateway.rendezvous) process.stdout.write(rendezvousBanner(g.gateway.rendezvous, o.publicHost) + '\n');
      onShutdown((signal) => {
        log.info({ signal }, 'shutting down: draining sessions for up to 5 s');
        return g.stop(5000);
      });
    });
}
