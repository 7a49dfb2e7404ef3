import { test } from 'node:test';
import { directBothWays } from '../helpers/p2p-pair.ts';

test('cone NAT on both sides (MASQUERADE, unsolicited input dropped): direct TCP by simultaneous open, 16 MiB each way byte-exact', async (t) => {
  await directBothWays(t, 'cone', 'cone');
});
