import { z } from 'zod';
import { bool, bytes, cidr, list, logLevel, name, port, portSet, seconds } from './fields.ts';
import { besideConfig, dropUndefined, fromEnv, readYaml, resolveFilePaths, validate } from './load.ts';
import { ConfigError } from './errors.ts';
import { readSecretFile, secretFlag } from './secret-file.ts';
import { RendezvousConfigSchema } from './rendezvous-config.ts';
import { DEFAULT_LINK_OPTIONS } from '../link/stream.ts';
import { DEFAULT_MAX_SESSIONS, DEFAULT_WINDOW, DEFAULT_WINDOW_MAX } from '../mux/mux.ts';

export const DEFAULT_DATA_DIR = './dk-data';
/** Keys that hold paths: relative ones in a config file are relative to the file (load.ts resolveFilePaths). */
const PATH_KEYS = ['data_dir', 'mgmt_tls_cert', 'mgmt_tls_key'];

/** Defaults come from SPEC §2 (ports, handshake, idle_close, auth_time) unless noted. */
export const GatewayConfigSchema = z.object({
  bind: z.string().default('0.0.0.0'),
  mgmt_bind: z.string().optional(),
  serv_port: port.default(35357),
  mgmt_port: port.default(3535),
  /**
   * TLS on the management port: `off` (plain HTTP, the quick start's default), or `self-signed`: a
   * certificate made on first start in data_dir and kept, whose fingerprint the CLI pins. Setting
   * mgmt_tls_cert and mgmt_tls_key (PEM files) turns TLS on with that certificate instead.
   */
  mgmt_tls: z.enum(['off', 'self-signed']).optional(),
  mgmt_tls_cert: z.string().min(1).optional(),
  mgmt_tls_key: z.string().min(1).optional(),
  /** Access ports are numbered upward from serv_port+1 (SPEC §2); default range: 1000 ports. */
  access_ports: portSet.optional(),
  /** Relative to the config file's directory when it comes from the file (or is left out of one). */
  data_dir: z.string().default(DEFAULT_DATA_DIR),
  handshake: seconds.default(10),
  idle_close: seconds.default(600),
  auth_time: seconds.default(3600),
  keepalive: seconds.default(15),
  scan_timeout: seconds.default(10),
  /** How often deadlines are checked. */
  sweep_interval: seconds.default(1),
  /** Per-session receive window (bytes) offered to agents. */
  window: bytes.default(DEFAULT_WINDOW),
  /** The most a session's window grows to when the path needs more (bandwidth × delay). */
  window_max: bytes.default(DEFAULT_WINDOW_MAX),
  /** Encrypted link: a session whose connection dropped is kept this long for a resume. */
  link_detach_timeout: seconds.default(60),
  /** Encrypted link: most unacknowledged bytes per session (the replay buffer). */
  link_window: bytes.default(DEFAULT_LINK_OPTIONS.window),
  /** Encrypted link: PING interval; a connection silent for 3x this is dropped and resumed. */
  link_keepalive: seconds.default(5),
  /** Sessions open at once on one agent link or one dk connect link; an OPN beyond is refused (CLS). */
  max_sessions_per_link: z.coerce.number().int().min(1).max(1_000_000).default(DEFAULT_MAX_SESSIONS),
  /** Static tunnels (listeners) one agent may publish. */
  max_exposes_per_agent: z.coerce.number().int().min(0).max(65535).default(64),
  /** PORT QUERY answers the gateway waits for at once per agent link; the API answers 429 beyond. */
  max_pending_scans: z.coerce.number().int().min(1).max(4096).default(16),
  /** Speak only the seed protocol (no HELLO extensions): for interoperability tests. */
  seed_only: bool.default(false),
  /**
   * dk connect's end-to-end path (docs/p2p.md): `auto` runs the link end to end with the agent and
   * lets it go direct through NATs; `relay` end to end through this gateway's relay only; `off`
   * through the gateway, which decrypts and re-encrypts (the older path).
   */
  p2p: z.enum(['auto', 'relay', 'off']).default('auto'),
  trusted_proxies: list(cidr).default([]),
  /** Ports agents may publish static tunnels on. */
  expose_ports: portSet.default('1024-65535'),
  /** Failed authentications (API, dk connect) per source IP per minute before 429. */
  auth_fail_limit: z.coerce.number().int().min(1).default(10),
  /** Failed authentications naming one user (TOTP) within 15 minutes, from any address, before that user must wait. */
  auth_fail_limit_user: z.coerce.number().int().min(1).default(10),
  /** Seconds between the aggregated log lines for a source whose authentications keep failing. */
  auth_log_interval: seconds.default(60),
  /** serv_port connections (plain and link) not yet authenticated, over all sources. */
  max_pending_handshakes: z.coerce.number().int().min(1).default(1024),
  /** The share of max_pending_handshakes one source address may hold. */
  max_pending_per_ip: z.coerce.number().int().min(1).default(32),
  /** Tunnelled sessions one user may hold open at once (access ports and dk connect together): below max_sessions_per_link, so one user cannot fill an agent's link. */
  max_sessions_per_user: z.coerce.number().int().min(1).default(1024),
  /** dk connect links one user may hold open at once. */
  max_links_per_user: z.coerce.number().int().min(1).default(64),
  /** Grants one user may hold at once (each takes a port for a source address). */
  max_grants_per_user: z.coerce.number().int().min(1).default(64),
  /** Concurrent connections to the management port. */
  mgmt_max_connections: z.coerce.number().int().min(1).default(256),
  /** The share of mgmt_max_connections one source address may hold. */
  mgmt_max_per_ip: z.coerce.number().int().min(1).default(32),
  max_body: z.coerce.number().int().min(256).max(1024 * 1024).default(16 * 1024),
  audit_days: z.coerce.number().positive().default(90),
  log_level: logLevel.default('info'),
  admin_token: z.string().min(16, 'must be at least 16 characters').optional(),
  backends: z.record(name, z.object({
    key: z.string().min(8, 'backend keys must be at least 8 characters'),
    expose_ports: portSet.optional(),
  })).default({}),
  /** The RustDesk-compatible rendezvous and relay (src/config/rendezvous-config.ts); off unless rendezvous.port is set. */
  rendezvous: RendezvousConfigSchema.default(RendezvousConfigSchema.parse({})),
}).strict();

export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;

export interface GatewayFlags {
  config?: string;
  servPort?: string;
  mgmtPort?: string;
  dataDir?: string;
  backend?: string[];
  /** NAME=FILE: a backend whose key is in FILE. */
  backendFile?: string[];
  adminToken?: string;
  adminTokenFile?: string;
  bind?: string;
  /** The RustDesk rendezvous base port N (also DK_RENDEZVOUS_PORT). */
  rendezvousPort?: string;
  mgmtTls?: string;
  mgmtTlsCert?: string;
  mgmtTlsKey?: string;
}

const ENV_KEYS = ['bind', 'mgmt_bind', 'serv_port', 'mgmt_port', 'mgmt_tls', 'mgmt_tls_cert', 'mgmt_tls_key', 'access_ports', 'data_dir', 'handshake', 'idle_close', 'auth_time',
  'keepalive', 'trusted_proxies', 'log_level', 'admin_token', 'seed_only', 'p2p', 'window', 'window_max', 'expose_ports', 'link_detach_timeout', 'link_window',
  'link_keepalive', 'auth_fail_limit', 'auth_fail_limit_user', 'auth_log_interval', 'max_pending_handshakes', 'max_pending_per_ip',
  'mgmt_max_connections', 'mgmt_max_per_ip', 'max_links_per_user', 'max_grants_per_user', 'max_sessions_per_link', 'max_exposes_per_agent',
  'max_pending_scans', 'max_sessions_per_user'];

/** `warn` hears about secret files that others may read (the CLI logs it once the logger exists). */
export function loadGatewayConfig(flags: GatewayFlags, env: NodeJS.ProcessEnv = process.env, warn: (message: string) => void = () => undefined): GatewayConfig {
  const path = flags.config ?? env.DK_CONFIG;
  const file = resolveFilePaths(readYaml(path), path, PATH_KEYS);
  // With a config file, the default data dir sits beside it too: the same state from any directory.
  const merged: Record<string, unknown> = { ...(path ? { data_dir: besideConfig(path, DEFAULT_DATA_DIR) } : {}), ...file, ...fromEnv(ENV_KEYS, env) };
  Object.assign(merged, dropUndefined({
    serv_port: flags.servPort, mgmt_port: flags.mgmtPort, data_dir: flags.dataDir, bind: flags.bind,
    mgmt_tls: flags.mgmtTls, mgmt_tls_cert: flags.mgmtTlsCert, mgmt_tls_key: flags.mgmtTlsKey,
    admin_token: secretFlag(flags.adminToken, flags.adminTokenFile, '--admin-token', warn),
  }));
  const rdvPort = flags.rendezvousPort ?? (env.DK_RENDEZVOUS_PORT || undefined);
  if (rdvPort !== undefined) merged.rendezvous = { ...(merged.rendezvous as Record<string, unknown> | undefined), port: rdvPort };
  const pairs = [
    ...(flags.backend ?? []).map((b) => ({ flag: '--backend', b, value: (v: string) => v })),
    ...(flags.backendFile ?? []).map((b) => ({ flag: '--backend-file', b, value: (f: string) => readSecretFile(f, '--backend-file', warn) })),
  ];
  if (pairs.length > 0) {
    const backends = { ...(merged.backends as Record<string, unknown> | undefined) };
    for (const { flag, b, value } of pairs) {
      const eq = b.indexOf('=');
      if (eq <= 0 || eq === b.length - 1) throw new ConfigError(`${flag} ${b}: expected NAME=${flag === '--backend' ? 'KEY' : 'FILE'}`);
      backends[b.slice(0, eq)] = { key: value(b.slice(eq + 1)) };
    }
    merged.backends = backends;
  }
  return validate(GatewayConfigSchema, merged, path ? `file ${path}, env and flags` : 'defaults, env and flags');
}

export function accessRange(c: GatewayConfig): string {
  return c.access_ports ?? `${c.serv_port + 1}-${Math.min(65535, c.serv_port + 1000)}`;
}

/** How the management port speaks: plain HTTP, TLS with a certificate made in data_dir, or TLS from PEM files. */
export type MgmtTlsMode = { mode: 'off' } | { mode: 'self-signed' } | { mode: 'files'; cert: string; key: string };

export function mgmtTlsMode(c: Pick<GatewayConfig, 'mgmt_tls' | 'mgmt_tls_cert' | 'mgmt_tls_key'>): MgmtTlsMode {
  const files = c.mgmt_tls_cert !== undefined || c.mgmt_tls_key !== undefined;
  if (!files) return { mode: c.mgmt_tls ?? 'off' };
  if (c.mgmt_tls_cert === undefined || c.mgmt_tls_key === undefined) {
    throw new ConfigError('mgmt_tls_cert and mgmt_tls_key go together: give both PEM files (--mgmt-tls-cert FILE --mgmt-tls-key FILE)');
  }
  if (c.mgmt_tls === 'self-signed') throw new ConfigError('mgmt_tls: self-signed makes its own certificate: leave out mgmt_tls_cert and mgmt_tls_key, or mgmt_tls');
  if (c.mgmt_tls === 'off') throw new ConfigError('mgmt_tls: off, but mgmt_tls_cert and mgmt_tls_key are set: leave them out for plain HTTP');
  return { mode: 'files', cert: c.mgmt_tls_cert, key: c.mgmt_tls_key };
}
