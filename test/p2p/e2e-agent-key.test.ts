import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { dk, killAll } from '../helpers/cli.ts';
import { gateway, KEY, tempDir } from '../helpers/stack.ts';
import { waitFor } from '../helpers/net.ts';

/**
 * The agent's static key for end-to-end links, through the real `dk agent` (docs/p2p.md §9.1): made
 * on first start in --data-dir (0600), told to the gateway, the same after a restart, and what
 * `dk pubkey --agent` prints for `dk connect --agent-key`.
 */
test('dk agent --data-dir: its end-to-end key is made once, kept across restarts, told to the gateway, and printed by dk pubkey --agent', async (t) => {
  const gw = await gateway();
  t.after(() => gw.cleanup());
  const dir = tempDir();
  const gatewayKey = gw.gateway.linkKey.publicRaw.toString('base64url');
  const start = () => dk(['agent', '--gateway', `127.0.0.1:${gw.servPort}`, '--name', 'home', '--key', KEY, '--gateway-key', gatewayKey, '--data-dir', dir]);
  const keyAtGateway = (): string | null => gw.gateway.agents.get('home')?.e2eKey ?? null;
  const first = start();
  t.after(() => killAll([first]));
  await waitFor(() => keyAtGateway() !== null, 15_000, 'the agent told its key');
  const k1 = keyAtGateway()!;
  assert.equal(statSync(join(dir, 'agent_link_key')).mode & 0o777, 0o600);
  const printed = dk(['pubkey', '--agent', '--data-dir', dir]);
  assert.equal((await printed.exited).code, 0, printed.err());
  assert.equal(printed.out().trim(), k1, 'dk pubkey --agent prints the key the gateway was told');
  first.kill('SIGTERM');
  await first.exited;
  await waitFor(() => keyAtGateway() === null, 10_000, 'the agent offline');
  const second = start();
  t.after(() => killAll([second]));
  await waitFor(() => keyAtGateway() !== null, 15_000, 'the agent back');
  assert.equal(keyAtGateway(), k1, 'the same key after a restart');
  // Without --data-dir an agent makes a new key each start (so pinning it only lasts one run).
  second.kill('SIGTERM');
  await second.exited;
  await waitFor(() => keyAtGateway() === null, 10_000, 'the agent offline');
  const third = dk(['agent', '--gateway', `127.0.0.1:${gw.servPort}`, '--name', 'home', '--key', KEY, '--gateway-key', gatewayKey]);
  t.after(() => killAll([third]));
  await waitFor(() => keyAtGateway() !== null, 15_000, 'the agent without a data dir');
  assert.notEqual(keyAtGateway(), k1);
});
