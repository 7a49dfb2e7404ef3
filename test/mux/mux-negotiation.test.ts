import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ALL_FEATURES, Feature } from '../../src/protocol/index.ts';
import { pair } from './helpers.ts';

test('HELLO: both sides agree on the intersection of features and learn the peer window', async () => {
  const p = pair({ window: 65536 }, { window: 131072, features: Feature.FLOW | Feature.EXPOSE });
  const { g, a } = p;
  await p.negotiated();
  assert.equal(g.features, Feature.FLOW | Feature.EXPOSE);
  assert.equal(a.features, Feature.FLOW | Feature.EXPOSE);
  assert.equal(g.peerHello?.window, 131072);
  assert.equal(a.peerHello?.window, 65536);
  g.destroy(); a.destroy();
});

test('a seed-only gateway (features 0) ignores HELLO and both stay on the seed protocol', async () => {
  const p = pair({ features: 0 });
  const { g, a } = p;
  // The agent's HELLO went first; a HELLO the gateway sent back would come before the answer.
  await p.roundTrip('a');
  assert.equal(g.features, 0);
  assert.equal(a.features, 0);
  assert.equal(a.offered, ALL_FEATURES);
  g.destroy(); a.destroy();
});
