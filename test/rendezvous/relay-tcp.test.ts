import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeFrame } from '../../src/rendezvous/framing.ts';
import { encodeRendezvous } from '../../src/rendezvous/messages.ts';
import { readAll, waitFor } from '../helpers/net.ts';
import { closed, handRequestFrame, readExactly, requestFrame, startRelay, tcpHalf } from '../helpers/relay.ts';

test('two TCP halves pair by uuid; bytes each sent before pairing arrive first, in order, then both ways', async () => {
  const { relay, events } = await startRelay();
  try {
    // A (codec-encoded request naming the peer id) sends data in the same write and while waiting.
    const a = await tcpHalf(relay.tcpPort, requestFrame('uuid-1', '', '123456789'), Buffer.from('A:early-1|'));
    await waitFor(() => relay.stats().pending === 1, 5_000, 'A waiting');
    a.write('A:early-2|');
    await waitFor(() => relay.stats().queuedBytes >= 20, 5_000, 'A early bytes held');
    // B uses the hand-written frame, with its own early bytes right behind it.
    const b = await tcpHalf(relay.tcpPort, handRequestFrame('uuid-1', ''), Buffer.from('B:early|'));
    assert.equal((await readExactly(b, 20)).toString(), 'A:early-1|A:early-2|');
    assert.equal((await readExactly(a, 8)).toString(), 'B:early|');
    const stats = relay.stats();
    assert.equal(stats.paired, 1);
    assert.equal(stats.pending, 0);
    assert.deepEqual(events.paired, [{ uuid: 'uuid-1', id: '123456789', ipA: '127.0.0.1', ipB: '127.0.0.1', ws: false }]);
    // After pairing the pipe is raw: bytes that look like frames are passed as they are.
    const frameLike = encodeFrame(encodeRendezvous({ union: { case: 'requestRelay', value: { uuid: 'x' } } }));
    b.write(frameLike);
    assert.deepEqual(await readExactly(a, frameLike.length), frameLike);
    a.write('ping');
    assert.equal((await readExactly(b, 4)).toString(), 'ping');
    // A ends: B sees EOF after everything, the pair ends with A's reason and the byte counts.
    a.end('bye');
    const rest = await readAll(b);
    assert.equal(rest.data.toString(), 'bye');
    assert.equal(rest.eof, true);
    b.end();
    await waitFor(() => events.ended.length === 1, 5_000, 'pair ended');
    assert.equal(events.ended[0]!.reason, 'a_closed');
    assert.equal(events.ended[0]!.bytesAtoB, 20 + 4 + 3);
    assert.equal(events.ended[0]!.bytesBtoA, 8 + frameLike.length);
    assert.equal(relay.stats().bytesRelayed, 27 + 8 + frameLike.length);
    assert.equal(relay.stats().pairsTotal, 1);
    await closed(a);
    await waitFor(() => relay.stats().connections === 0, 5_000, 'both sockets gone');
  } finally {
    await relay.close();
  }
});

test('with an enforced key, a mismatching half is closed silently and nothing it sent is forwarded', async () => {
  const key = 'OeVuKk5nlHiXp+APNn0Y3pC1Iwpwn44JGqrQCsWqmBw=';
  const { relay, events } = await startRelay({ key });
  try {
    const a = await tcpHalf(relay.tcpPort, requestFrame('u-key', key));
    await waitFor(() => relay.stats().pending === 1, 5_000, 'A waiting');
    const wrong = await tcpHalf(relay.tcpPort, handRequestFrame('u-key', 'wrong'), Buffer.from('LEAK'));
    const got = await readAll(wrong);
    assert.equal(got.data.length, 0, 'the relay never answers');
    const noKey = await tcpHalf(relay.tcpPort, handRequestFrame('u-key', ''), Buffer.from('LEAK'));
    await closed(noKey);
    assert.deepEqual(events.refused.map((r) => r.reason), ['key_mismatch', 'key_mismatch']);
    assert.equal(relay.stats().pending, 1, 'A still waits');
    // The right key pairs; A's first bytes are the good half's: the refused ones' never came.
    const b = await tcpHalf(relay.tcpPort, requestFrame('u-key', key), Buffer.from('GOOD'));
    assert.equal((await readExactly(a, 4)).toString(), 'GOOD');
    a.destroy();
    b.destroy();
  } finally {
    await relay.close();
  }
});

test('a first frame that is not a usable RequestRelay closes the connection, counted by reason', async () => {
  const { relay, events } = await startRelay();
  try {
    const cases: [Buffer, string][] = [
      [Buffer.from('92010232014b', 'hex'), 'no_uuid'],
      [Buffer.from('32030a0161', 'hex'), 'not_request_relay'],
      [Buffer.alloc(0), 'not_request_relay'],
      [Buffer.from('ffffffff', 'hex'), 'malformed'],
    ];
    for (const [payload, reason] of cases) {
      const s = await tcpHalf(relay.tcpPort, encodeFrame(payload), Buffer.from('tail'));
      const got = await readAll(s);
      assert.equal(got.data.length, 0);
      assert.equal(events.refused.at(-1)?.reason, reason);
    }
    // A header announcing more than maxFrameSize is refused as soon as the header is complete.
    const big = await tcpHalf(relay.tcpPort, Buffer.from([0x03, 0x00, 0x00, 0x40]));
    await closed(big);
    assert.equal(events.refused.at(-1)?.reason, 'frame_too_large');
    assert.deepEqual(relay.stats().refused, { no_uuid: 1, not_request_relay: 2, malformed: 1, frame_too_large: 1 });
    await waitFor(() => relay.stats().connections === 0, 5_000, 'all closed');
  } finally {
    await relay.close();
  }
});

test('close() ends waiting and paired connections and stops listening', async () => {
  const { relay, events } = await startRelay();
  const port = relay.tcpPort;
  const w = await tcpHalf(port, requestFrame('alone'));
  const a = await tcpHalf(port, requestFrame('pair'));
  await waitFor(() => relay.stats().pending === 2, 5_000, 'two waiting');
  const b = await tcpHalf(port, requestFrame('pair'));
  await waitFor(() => relay.stats().paired === 1, 5_000, 'paired');
  await relay.close();
  await Promise.all([closed(w), closed(a), closed(b)]);
  assert.equal(events.ended[0]?.reason, 'shutdown');
  await assert.rejects(tcpHalf(port, requestFrame('late')));
});
