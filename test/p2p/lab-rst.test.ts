import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLab, labUnavailable, type NatMode } from '../helpers/natlab.ts';
import { punchPair, startCoordinator } from '../helpers/p2p-pair.ts';

const TRIES = 8;

/**
 * A router whose own stack answers an unsolicited SYN with RST (bare MASQUERADE): the peer's SYN
 * that arrives before this side's has left is refused, and the RST also removes the peer's NAT
 * mapping. Direct TCP then depends on timing. No assertion on the lottery: every try must end
 * direct on both sides or relayed with a reason on both, and the counts are printed.
 */
test('routers that answer unsolicited SYNs with RST: every try ends direct or with a reason; counts printed', async (t) => {
  const why = await labUnavailable();
  if (why !== undefined) { t.skip(why); return; }
  const lab = await createLab({ natA: 'rst', natB: 'cone' });
  try {
    const coord = await startCoordinator(lab);
    for (const natB of ['cone', 'rst'] as NatMode[]) {
      await lab.setNat('B', natB);
      let direct = 0;
      let redialled = 0;
      for (let i = 0; i < TRIES; i++) {
        const { a, b } = await punchPair(lab, coord.port, { session: `rst-${natB}-${i}`, deadlineMs: 1_500 });
        for (const side of [a, b]) {
          assert.equal(side.exit, 0);
          if (side.punch.ok === true) {
            assert.match(String(side.punch.line), /^path=direct via="public /);
            if (side.punch.outcomes.some((o: any) => o.reason === 'won' && o.attempts > 1)) redialled++;
          } else {
            assert.match(String(side.punch.line), /^path=relay reason="no direct path/);
            assert.ok(side.punch.outcomes.length > 0);
            for (const o of side.punch.outcomes) assert.ok(typeof o.reason === 'string' && o.reason !== 'won');
          }
        }
        // Both ends of a TCP connection see it, or neither does.
        assert.equal(a.punch.ok, b.punch.ok, `A: ${String(a.punch.line)} / B: ${String(b.punch.line)}`);
        if (a.punch.ok === true) direct++;
        t.diagnostic(`rst/${natB} try ${i + 1}: A ${String(a.punch.line)} | B ${String(b.punch.line)}`);
      }
      t.diagnostic(`NAT A rst, NAT B ${natB}: direct ${direct}/${TRIES} (a redial after RST won on ${redialled} sides), relay ${TRIES - direct}/${TRIES}`);
    }
  } finally {
    await lab.close();
  }
});
