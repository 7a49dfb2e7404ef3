import { Option, type Command } from 'commander';
import { splitHostPort } from '../../config/agent-config.ts';
import { ConfigError } from '../../config/errors.ts';
import { Forwarder } from '../../connect/forwarder.ts';
import { checkAtStart } from '../../connect/start-check.ts';
import { stdioDuplex } from '../../connect/stdio.ts';
import { stdioExit } from '../../connect/stdio-exit.ts';
import { logFormat, makeLogger } from '../../util/log.ts';
import { tuneProcessForRelaying } from '../../util/process-tuning.ts';
import { decodeKeyOrConfigError, logFormatOption, onShutdown, tokenOf } from '../common.ts';

/** How long `dk connect` waits at start for the gateway to accept its key and token before listening anyway. */
const START_CHECK_MS = 10_000;

/** `dk connect`: a local port forwarded over the encrypted, resumable link. */
export function connectCommand(program: Command): void {
  program.command('connect')
    .description('forward a local port to a target behind a backend, over the encrypted link: connections survive network drops')
    .argument('<backend>', 'backend name')
    .argument('<port>', 'target port')
    .argument('[host]', 'target host IP in the backend LAN (default: the agent host)')
    .option('-L, --listen <[bind:]port>', 'local port to listen on, e.g. 2222 or 127.0.0.1:2222')
    .option('--stdio', 'instead of -L: one session on stdin/stdout, for ssh -o ProxyCommand (exits when it ends)')
    .requiredOption('--gateway <host:port>', "the gateway's serv_port address")
    .addOption(new Option('--gateway-key <key>', "the gateway's public key (`dk pubkey` on the gateway)").env('DK_GATEWAY_KEY').makeOptionMandatory())
    .addOption(new Option('--token <token>', 'API token (or DK_TOKEN, or --token-file)').env('DK_TOKEN'))
    .option('--token-file <file>', 'read the API token from FILE')
    .addOption(new Option('--p2p <mode>', 'auto: end to end with the agent, direct through NATs when possible, else relayed; off: end to end, relayed only').choices(['auto', 'off']).default('auto'))
    .addOption(new Option('--agent-key <key>', "pin the agent's end-to-end link key (dk pubkey --agent --data-dir DIR on the agent host prints it; the agent logs it as agent_key)").env('DK_AGENT_KEY'))
    .addHelpText('after', `
Examples:
  dk connect home 22 -L 2222 --gateway gw.example.net:35357 --gateway-key KEY --token-file ~/dk-token
  ssh -o ProxyCommand='dk connect home 22 --stdio --gateway gw.example.net:35357 --gateway-key KEY --token-file ~/dk-token' user@home

With --stdio, stdout carries the session's bytes and nothing else (messages go to stderr), and the
exit code says how the session ended: 0 cleanly, 3 refused (token, permission, rate limit), 4 refused
otherwise or ended without a clean close, 5 the gateway unreachable or the link lost for good,
6 the gateway does not hold the --gateway-key given (or the agent not the --agent-key, or the
gateway offers no end-to-end link for the --agent-key: it would carry the session itself).

Each path decision is one line on stderr (with --stdio only at DK_LOG_LEVEL=info): path=relay reason="…", path=direct via="…" ms=… after_ms=…,
or path=gateway reason="…" when the gateway or agent cannot run the link end to end (docs/p2p.md).`)
    .addOption(logFormatOption())
    .action(async (backend: string, port: string, host: string | undefined, o: { listen?: string; stdio?: boolean; gateway: string; gatewayKey: string; token?: string; tokenFile?: string; logFormat?: string; p2p: 'auto' | 'off'; agentKey?: string }, cmd: Command) => {
      if (!o.listen === !o.stdio) throw new ConfigError('dk connect needs one of -L [BIND:]PORT (a local port) and --stdio (stdin/stdout, for ssh ProxyCommand)');
      tuneProcessForRelaying();
      // With --stdio the user's terminal shows stderr under ssh: warnings only (DK_LOG_LEVEL for more);
      // how the session ended is the one line stdioExit() prints.
      const log = makeLogger(o.stdio ? process.env.DK_LOG_LEVEL ?? 'warn' : 'info', 'connect', logFormat(o.logFormat, process.stderr.isTTY === true));
      const token = tokenOf(o, cmd, (w) => log.warn(w));
      if (!token) throw new ConfigError('dk connect needs an API token: --token-file FILE, DK_TOKEN, or --token TOKEN');
      const listen = o.listen ?? '127.0.0.1:0';
      const { host: bind, port: localPort } = listen.lastIndexOf(':') > 0 ? splitHostPort(listen) : { host: '127.0.0.1', port: Number(listen) };
      if (!Number.isInteger(localPort) || localPort < 0 || localPort > 65535) throw new ConfigError(`-L ${listen}: expected [BIND:]PORT`);
      const targetPort = Number(port);
      if (!Number.isInteger(targetPort) || targetPort < 1 || targetPort > 65535) throw new ConfigError(`port ${port}: expected 1-65535`);
      const gatewayKey = decodeKeyOrConfigError(o.gatewayKey);
      const gw = splitHostPort(o.gateway);
      const fwd = new Forwarder({
        gatewayHost: gw.host, gatewayPort: gw.port, gatewayKey, token, backend, port: targetPort,
        ...(host ? { host } : {}), bind, localPort, log, p2p: o.p2p,
        ...(o.agentKey ? { agentKey: decodeKeyOrConfigError(o.agentKey, '--agent-key') } : {}),
        // Under ssh (--stdio) stderr is the user's terminal: path lines only when asked (DK_LOG_LEVEL=info).
        onPath: (e) => { if (!o.stdio || log.isLevelEnabled('info')) process.stderr.write(`dk connect: ${e.line}${e.changes > 0 ? ` changes=${e.changes}` : ''}\n`); },
      });
      if (o.stdio) {
        onShutdown(() => fwd.close());
        const end = await fwd.carry(stdioDuplex());
        fwd.close();
        const { code, message } = stdioExit(end);
        if (message) process.stderr.write(`dk: ${message}\n`);
        process.exit(code);
      }
      // A wrong --gateway-key or token fails here, not at the first connection; an unreachable gateway does not.
      const verdict = await checkAtStart(fwd.open(), o.gateway, START_CHECK_MS);
      if (verdict.kind === 'fatal') {
        process.stderr.write(`dk: ${verdict.message}\n`);
        process.exit(verdict.exitCode);
      }
      if (verdict.kind === 'warn') log.warn(verdict.message);
      const actual = await fwd.listen();
      process.stdout.write(`dk connect: ${bind}:${actual} → ${backend} ${host ?? '127.0.0.1'}:${targetPort} via ${o.gateway} (encrypted; connections survive network drops)\n`);
      onShutdown(() => fwd.close());
    });
}
