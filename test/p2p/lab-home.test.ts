import { test } from 'node:test';
import { directBothWays } from '../helpers/p2p-pair.ts';

test('home-router NATs on both sides (unsolicited inbound dropped in FORWARD): direct TCP, 16 MiB each way byte-exact', async (t) => {
  await directBothWays(t, 'home', 'home');
});
