import { z } from 'zod';
import { bool, bytes, list, logLevel, name, netRule, port, seconds, cidr } from './fields.ts';
import { dropUndefined, fromEnv, readYaml, resolveFilePaths, validate } from './load.ts';
import { secretFlag } from './secret-file.ts';
import { DEFAULT_MAX_SESSIONS, DEFAULT_WINDOW, DEFAULT_WINDOW_MAX } from '../mux/mux.ts';

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/, 'must be HOST:PORT (IPv6 in brackets: [::1]:35357)');

const gatewayKey = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be the gateway\'s 43-character public key (print it on the gateway with `dk pubkey`)');

export const AgentConfigSchema = z.object({
  gateway: hostPort,
  /** The gateway's static public key, pinned: the encrypted link refuses any other gateway. */
  gateway_key: gatewayKey.optional(),
  /**
   * Speak the seed's plain DK protocol on TCP instead of the encrypted, resumable link. Without a
   * gateway_key the agent uses plain mode too (so the core flags keep working), and warns.
   */
  plain: bool.default(false),
  /** Encrypted link: how long to keep trying to resume a dropped connection before starting anew. */
  link_resume: seconds.default(60),
  name,
  key: z.string().min(8, 'must be at least 8 characters (the key the gateway has for this name)'),
  /** What this agent will dial: CIDR[:PORTS]. Default: only its own host (SPEC §2). */
  lan_nets: list(netRule).default(['127.0.0.1/32', '::1/128']),
  expose: z.array(z.object({
    remote_port: port.refine((p) => p > 0, 'must be 1-65535'),
    local: hostPort,
    allow: list(cidr).default([]),
  }).strict()).default([]),
  reconnect_min: seconds.default(0.5),
  reconnect_max: seconds.default(30),
  keepalive: seconds.default(15),
  connect_timeout: seconds.default(10),
  scan_concurrency: z.coerce.number().int().min(1).max(4096).default(256),
  scan_timeout: seconds.default(1),
  scan_max_hosts: z.coerce.number().int().min(1).max(65536).default(4096),
  window: bytes.default(DEFAULT_WINDOW),
  window_max: bytes.default(DEFAULT_WINDOW_MAX),
  /** Sessions open at once on the gateway link; an OPN beyond is refused with CLS. */
  max_sessions: z.coerce.number().int().min(1).max(1_000_000).default(DEFAULT_MAX_SESSIONS),
  seed_only: bool.default(false),
  /**
   * Where the agent keeps its static key for end-to-end dk connect links (`agent_link_key`, docs/p2p.md).
   * Unset: a new key each start (clients that pin it with --agent-key must pin it again).
   */
  data_dir: z.string().optional(),
  log_level: logLevel.default('info'),
}).strict();

export type AgentConfig = z.infer<typeof AgentConfigSchema>;

export interface AgentFlags {
  config?: string;
  gateway?: string;
  name?: string;
  key?: string;
  /** A file holding the key (docs/security.md: keep secrets off the command line). */
  keyFile?: string;
  allow?: string[];
  gatewayKey?: string;
  plain?: boolean;
  dataDir?: string;
}

const ENV_KEYS = ['gateway', 'gateway_key', 'plain', 'name', 'key', 'lan_nets', 'reconnect_min', 'reconnect_max', 'link_resume', 'keepalive', 'log_level', 'seed_only', 'window', 'window_max', 'max_sessions', 'data_dir'];

/** `warn` hears about secret files that others may read (the CLI logs it once the logger exists). */
export function loadAgentConfig(flags: AgentFlags, env: NodeJS.ProcessEnv = process.env, warn: (message: string) => void = () => undefined): AgentConfig {
  const path = flags.config ?? env.DK_AGENT_CONFIG;
  const file = resolveFilePaths(readYaml(path), path, ['data_dir']);
  const merged: Record<string, unknown> = { ...file, ...fromEnv(ENV_KEYS, env) };
  Object.assign(merged, dropUndefined({
    gateway: flags.gateway, name: flags.name, key: secretFlag(flags.key, flags.keyFile, '--key', warn), gateway_key: flags.gatewayKey, plain: flags.plain, data_dir: flags.dataDir,
    lan_nets: flags.allow && flags.allow.length > 0 ? flags.allow : undefined,
  }));
  return validate(AgentConfigSchema, merged, flags.config ? `file ${flags.config}, env and flags` : 'env and flags');
}

export function splitHostPort(hp: string): { host: string; port: number } {
  const i = hp.lastIndexOf(':');
  const host = hp.slice(0, i).replace(/^\[|\]$/g, '');
  return { host, port: Number(hp.slice(i + 1)) };
}

/** The encrypted link needs the pinned key; without one the agent speaks the seed's plain protocol. */
export function usesLink(c: AgentConfig): boolean {
  return !c.plain && c.gateway_key !== undefined;
}
