import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readLine } from '../../src/connect/protocol.ts';
import { e2eLine } from '../../src/p2p/e2e-messages.ts';
import { ADMIN } from '../helpers/stack.ts';
import { e2eStack, askE2e } from '../helpers/e2e.ts';
import { http, waitFor } from '../helpers/net.ts';
import { parseProm, sample } from '../helpers/prom.ts';

/**
 * What a client reports about its path feeds GET /api/v1/links and dk_p2p_punches_total
 * (docs/p2p.md §9). The gateway cannot see a punch's outcome, but it knows which punches it
 * coordinated: a client counts one outcome per punch session it was given, not as many as it
 * cares to claim.
 */
test('punch outcomes count once per punch the gateway coordinated for the client; claims beyond them are not counted', async (t) => {
  const { gw, echo } = await e2eStack(t);
  const a = await askE2e(gw.servPort, gw.gateway.linkKey.publicRaw, ADMIN, echo.port, { p2p: 'auto' });
  t.after(() => a.control.destroy());
  for (let i = 0; i < 50; i++) a.control.write(e2eLine({ t: 'path', path: 'direct', reason: 'path=direct (claimed)', punch: 'direct' }));
  await waitFor(() => [...gw.gateway.e2e.clients.values()][0]?.changes.length === 16, 5000, 'the reports taken in');
  const client = [...gw.gateway.e2e.clients.values()][0]!;
  assert.deepEqual(client.punches, { direct: 0, failed: 0 }, 'no punch was coordinated, so none counts');
  // 16 decisions are kept, but the path changed never: the first path is not a change, and 49 more "direct" are none.
  assert.equal(client.path_changes, 0);
  const text = (await http('GET', `${gw.api}/metrics`, { token: ADMIN })).text;
  assert.equal(sample(parseProm(text), 'dk_p2p_punches_total', { outcome: 'direct' }) ?? 0, 0);
  // One punch coordinated: its outcome counts, once.
  a.control.write(e2eLine({ t: 'punch' }));
  assert.equal((JSON.parse(await readLine(a.control, 5000)) as { t: string }).t, 'punch');
  for (let i = 0; i < 3; i++) a.control.write(e2eLine({ t: 'path', path: 'relay', reason: `path=relay failed ${i}`, punch: 'failed' }));
  await waitFor(() => client.changes.at(-1)?.reason === 'path=relay failed 2', 5000, 'the reports taken in');
  assert.deepEqual(client.punches, { direct: 0, failed: 1 });
  assert.equal(client.path_changes, 1, 'direct → relay once; the next two relay decisions change nothing');
  const after = parseProm((await http('GET', `${gw.api}/metrics`, { token: ADMIN })).text);
  assert.equal(sample(after, 'dk_p2p_path_changes_total', { path: 'relay' }), 1);
  assert.equal(sample(after, 'dk_p2p_path_changes_total', { path: 'direct' }) ?? 0, 0, 'the first path is not a change');
});
