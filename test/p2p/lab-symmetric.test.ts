import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLab, labUnavailable, LAB_ADDR } from '../helpers/natlab.ts';
import { punchPair, startCoordinator } from '../helpers/p2p-pair.ts';

test('symmetric NAT on one side (MASQUERADE --random-fully): no direct path, and each side reports why', async (t) => {
  const why = await labUnavailable();
  if (why !== undefined) { t.skip(why); return; }
  const lab = await createLab({ natA: 'symmetric', natB: 'cone' });
  try {
    const coord = await startCoordinator(lab);
    const deadlineMs = 2_000;
    const { a, b } = await punchPair(lab, coord.port, { session: 'symmetric', deadlineMs });
    t.diagnostic(`A: ${String(a.punch.line)}`);
    t.diagnostic(`B: ${String(b.punch.line)}`);
    assert.equal(a.go.observed.host, LAB_ADDR.wanA);
    for (const side of [a, b]) {
      assert.equal(side.punch.ok, false);
      assert.equal(side.exit, 0);
      assert.match(String(side.punch.line), /^path=relay reason="no direct path/);
      // Every candidate is accounted for, each with a reason; the public one never answered.
      const pub = side.punch.outcomes.find((o: any) => o.candidate.kind === 'public');
      assert.ok(pub, 'the public candidate was dialled');
      assert.ok(['timeout', 'refused'].includes(pub.reason), `public candidate: ${pub.reason}`);
      for (const o of side.punch.outcomes) assert.notEqual(o.reason, 'won');
    }
    // B dialled A's NAT at the port the coordinator saw; A's SYN to B left NAT A from another,
    // random port, so B's SYN found no mapping: the NAT's drop is a timeout at the deadline.
    const bPub = b.punch.outcomes.find((o: any) => o.candidate.kind === 'public');
    assert.equal(bPub.reason, 'timeout');
    assert.ok(String(b.punch.line).includes(`public ${LAB_ADDR.wanA}:${a.go.observed.port} timeout`), String(b.punch.line));
  } finally {
    await lab.close();
  }
});
