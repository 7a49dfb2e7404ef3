import type { Command } from 'commander';
import { Option } from 'commander';
import { ConfigError } from '../config/errors.ts';
import { secretFlag } from '../config/secret-file.ts';
import { decodeKey, loadOrCreateStaticKey } from '../link/keys.ts';
import { dataDirError } from '../store/data-dir.ts';
import { LOG_FORMATS } from '../util/log.ts';
import { parseFingerprint } from '../util/tls-fingerprint.ts';
import { ApiClientError, type Credentials } from './api-client.ts';
import { loginPath, readLogin, sameApi } from './login-file.ts';

/** What every CLI command file shares: flag helpers, key loading, shutdown, API credentials. */

export function decodeKeyOrConfigError(text: string, flag = '--gateway-key'): Buffer {
  try {
    return decodeKey(text);
  } catch (e) {
    throw new ConfigError(`${flag}: ${(e as Error).message}`);
  }
}

/** Commander collector for repeatable flags. */
export const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** The gateway's link key in a data dir (made if absent); a data dir that cannot hold it is a configuration error. */
export function gatewayKeyIn(dataDir: string, file = 'link_key'): ReturnType<typeof loadOrCreateStaticKey> {
  try {
    return loadOrCreateStaticKey(dataDir, file);
  } catch (e) {
    throw (e as NodeJS.ErrnoException).code ? dataDirError(dataDir, e) : new ConfigError(`--data-dir ${dataDir}: ${(e as Error).message}`);
  }
}

/** Runs `stop` once on SIGINT or SIGTERM, then exits 0. */
export function onShutdown(stop: (signal: string) => Promise<unknown> | void): void {
  const handler = (signal: string): void => void Promise.resolve(stop(signal)).then(() => process.exit(0));
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}

export interface ApiOpts { api: string; token?: string; tokenFile?: string; totp?: string; json?: boolean; apiFingerprint?: string }

/** The flags of every command that talks to the management API. */
export const apiOptions = (c: Command): Command => c
  .addOption(new Option('--api <url>', 'management API URL').env('DK_API').default('http://127.0.0.1:3535'))
  .addOption(new Option('--token <token>', 'API token (or --token-file)').env('DK_TOKEN'))
  .option('--token-file <file>', 'read the API token from FILE')
  .addOption(new Option('--totp <user:code>', 'authenticate with a TOTP code instead of a token'))
  .addOption(new Option('--api-fingerprint <sha256>', "with an https --api: accept only the certificate with this SHA-256 fingerprint (self-signed too; the gateway prints it at start)").env('DK_API_FINGERPRINT'))
  .option('--json', 'print JSON for scripts');

/** A secret file others may read is worth a word on stderr; these commands have no logger. */
export const warnLine = (w: string): void => void process.stderr.write(`dk: warning: ${w}\n`);

/** The API token: --token-file FILE, --token T or DK_TOKEN. DK_TOKEN gives way to --token-file; --token with it is an error. */
export function tokenOf(o: { token?: string; tokenFile?: string }, cmd: Command, warn: (w: string) => void): string | undefined {
  const given = cmd.getOptionValueSource('token') === 'env' && o.tokenFile !== undefined ? undefined : o.token;
  return secretFlag(given, o.tokenFile, '--token', warn);
}

/**
 * The API address and credential of a command: --api/DK_API and --token/--token-file/DK_TOKEN/--totp
 * when given, else `dk login`'s stored ones. The stored token goes only to the stored address: a
 * command pointed elsewhere (--api, DK_API) does not send it there.
 */
export function creds(o: ApiOpts, cmd: Command): Credentials {
  const token = tokenOf(o, cmd, warnLine);
  const apiGiven = cmd.getOptionValueSource('api') !== 'default';
  const stored = apiGiven && (token || o.totp) ? null : readLogin(loginPath(), warnLine);
  const api = !apiGiven && stored ? stored.api : o.api;
  const useStored = !o.totp && stored && sameApi(stored.api, api) ? stored.token : undefined;
  const t = token ?? useStored;
  if (!t && !o.totp) {
    const hint = stored ? ` (the stored login is for ${stored.api}, not ${api})` : '';
    throw new ApiClientError(401, `no credentials for ${api}${hint}: run dk login --api URL --token-file FILE once, or pass --token-file FILE, DK_TOKEN or --totp USER:CODE`);
  }
  // The pin: the flag (or DK_API_FINGERPRINT), else the stored login's when the address is the stored one.
  const fingerprint = apiFingerprint(api, o.apiFingerprint) ?? (stored && sameApi(stored.api, api) ? stored.fingerprint : undefined);
  return { api, ...(t ? { token: t } : {}), ...(o.totp ? { totp: o.totp } : {}), ...(fingerprint ? { fingerprint } : {}) };
}

/** --api-fingerprint, checked and in the form the gateway prints; it pins a TLS certificate, so it needs an https API. */
export function apiFingerprint(api: string, given: string | undefined): string | undefined {
  if (given === undefined || given === '') return undefined;
  let fp: string;
  try {
    fp = parseFingerprint(given);
  } catch (e) {
    throw new ConfigError(`--api-fingerprint ${given}: ${(e as Error).message}`);
  }
  if (!api.startsWith('https://')) throw new ConfigError(`--api-fingerprint pins the API's TLS certificate, but --api ${api} is not https://`);
  return fp;
}

/** --log-format json|pretty (or DK_LOG_FORMAT) for the commands that log; neither: pretty on a terminal, JSON otherwise. */
export const logFormatOption = (): Option => new Option('--log-format <format>', 'log lines as "json" or "pretty" (default: pretty when stderr is a terminal, JSON otherwise)')
  .env('DK_LOG_FORMAT').choices(LOG_FORMATS);
