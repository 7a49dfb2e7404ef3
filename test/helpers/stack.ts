import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { Agent } from '../../src/agent/agent.ts';
import { AgentConfigSchema, type AgentConfig } from '../../src/config/agent-config.ts';
import { GatewayConfigSchema } from '../../src/config/gateway-config.ts';
import { startGateway, type RunningGateway } from '../../src/gateway/serve.ts';
import { silentLogger, makeLogger } from '../../src/util/log.ts';
import { Feature } from '../../src/protocol/index.ts';
import { waitFor } from './net.ts';

export const ADMIN = 'admin-token-for-tests-0123456789';
export const KEY = 'backend-key-for-tests';

const log = process.env.DK_TEST_LOG ? makeLogger(process.env.DK_TEST_LOG, 'test') : silentLogger;

/** Each test gateway's link key by serv_port, so agents pin the right one by default. */
const keys = new Map<number, string>();

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'dk-test-'));
}

/** A gateway on loopback with random ports and its own data dir. */
export async function gateway(over: Record<string, unknown> = {}, dataDir = tempDir()): Promise<RunningGateway & { dataDir: string; api: string; cleanup(): Promise<void> }> {
  for (let attempt = 0; ; attempt++) {
    const base = randomInt(20_000, 32_000); // below the ephemeral range (32768+)
    const config = GatewayConfigSchema.parse({
      bind: '127.0.0.1', serv_port: 0, mgmt_port: 0, access_ports: `${base}-${base + 40}`, data_dir: dataDir,
      admin_token: ADMIN, backends: { home: { key: KEY } }, sweep_interval: 0.1, keepalive: 1, ...over,
    });
    try {
      const g = await startGateway(config, log);
      keys.set(g.servPort, g.gateway.linkKey.publicRaw.toString('base64url'));
      return {
        ...g, dataDir, api: `http://127.0.0.1:${g.mgmtPort}`,
        async cleanup() { await g.stop(); rmSync(dataDir, { recursive: true, force: true }); },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt > 5) throw e;
    }
  }
}

/** Agents use the encrypted link with the gateway's key unless `plain: true` is given. */
export function agentConfig(servPort: number, over: Record<string, unknown> = {}): AgentConfig {
  const linkKey = over.plain ? {} : { gateway_key: keys.get(servPort) };
  return AgentConfigSchema.parse({
    gateway: `127.0.0.1:${servPort}`, name: 'home', key: KEY, ...linkKey, lan_nets: ['127.0.0.0/8'], reconnect_min: 0.05, reconnect_max: 0.5, keepalive: 1, ...over,
  });
}

export function agent(servPort: number, over: Record<string, unknown> = {}): Promise<Agent> {
  const a = new Agent(agentConfig(servPort, over), log);
  a.start();
  return Promise.resolve(a);
}

/**
 * Waits until the gateway sees backend `name` online with extensions negotiated (or seed mode),
 * and, when the agent tells it, its allowlist (it follows HELLO by one round trip).
 */
export async function online(g: RunningGateway, name = 'home', seedOnly = false): Promise<void> {
  await waitFor(() => {
    const l = g.gateway.agents.get(name);
    if (!l || (!seedOnly && l.mux.features === 0)) return false;
    return (l.mux.features & Feature.ALLOWLIST) === 0 || l.allowlist.rules() !== null;
  }, 10_000, `backend ${name} online`);
}
