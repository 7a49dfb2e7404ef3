import assert from 'node:assert/strict';
import { test } from 'node:test';
import { packageVersion } from '../../src/util/version.ts';
import { http, waitFor } from '../helpers/net.ts';
import { ADMIN, agent, gateway, online } from '../helpers/stack.ts';

/** The agent tells the gateway its version after HELLO (AGENT_INFO); the API shows it; a seed-only agent has none. */
test('GET /api/v1/backends shows the version a real agent told, and null for a seed-only agent', async () => {
  const g = await gateway({ backends: { home: { key: 'backend-key-for-tests' }, old: { key: 'backend-key-for-tests' } } });
  const a = await agent(g.servPort);
  const seed = await agent(g.servPort, { name: 'old', plain: true, seed_only: true });
  try {
    await online(g);
    await online(g, 'old', true);
    await waitFor(() => g.gateway.agents.get('home')?.version !== null, 10_000, 'AGENT_INFO');
    const r = await http('GET', `${g.api}/api/v1/backends`, { token: ADMIN });
    const by = Object.fromEntries((r.json.backends as { name: string; agent_version: string | null }[]).map((b) => [b.name, b.agent_version]));
    assert.deepEqual(by, { home: packageVersion(), old: null });
  } finally {
    await a.stop();
    await seed.stop();
    await g.cleanup();
  }
});
