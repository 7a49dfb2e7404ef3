import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sendPattern, waitFor } from '../helpers/net.ts';
import { handRequestFrame, readExactly, receive, requestFrame, startRelay, tcpHalf } from '../helpers/relay.ts';

const MiB = 1024 * 1024;

test('a raw 64 MiB copy each way at the same time arrives byte-exact at both ends', async () => {
  const { relay, events } = await startRelay();
  try {
    const a = await tcpHalf(relay.tcpPort, requestFrame('bulk-uuid'));
    await waitFor(() => relay.stats().pending === 1, 5_000, 'A waiting');
    const b = await tcpHalf(relay.tcpPort, handRequestFrame('bulk-uuid', ''));
    // Both sides start writing at once; neither ends before it has everything from the other.
    const [sentA, sentB, gotAtB, gotAtA] = await Promise.all([
      sendPattern(a, 11, 64 * MiB, false),
      sendPattern(b, 22, 64 * MiB, false),
      receive(b, 64 * MiB),
      receive(a, 64 * MiB),
    ]);
    assert.equal(gotAtB.bytes, 64 * MiB);
    assert.equal(gotAtA.bytes, 64 * MiB);
    assert.equal(gotAtB.hash, sentA, 'A → B byte-exact');
    assert.equal(gotAtA.hash, sentB, 'B → A byte-exact');
    // Still a working pipe afterwards.
    a.write('after');
    assert.equal((await readExactly(b, 5)).toString(), 'after');
    a.end();
    b.end();
    await waitFor(() => events.ended.length === 1, 10_000, 'pair ended');
    assert.equal(events.ended[0]!.bytesAtoB, 64 * MiB + 5);
    assert.equal(events.ended[0]!.bytesBtoA, 64 * MiB);
  } finally {
    await relay.close();
  }
});
