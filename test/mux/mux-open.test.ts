import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { setImmediate as immediate } from 'node:timers/promises';
import { pair, recorder, until } from './helpers.ts';

const TYPES = ['CLS', 'OPN', 'DAT', 'CMD'];

/** The link's writes from now on: a frame's type for a whole frame or a DAT header, `bytes:n` for a payload. */
function spyWrites(link: Duplex): string[] {
  const seen: string[] = [];
  const write = link.write.bind(link) as (b: Buffer) => boolean;
  (link as { write: (b: Buffer) => boolean }).write = (b: Buffer): boolean => {
    const type = TYPES[b[0]! >> 6]!;
    const whole = b.length >= 6 && b.length === (((b[0]! & 0x1f) << 8) | b[1]!);
    // A DAT header is 6 bytes, or 7 with R set for a BIG frame (negotiated by default).
    const datHeader = type === 'DAT' && (b.length === 6 || (b.length === 7 && (b[0]! & 0x20) !== 0));
    seen.push(whole || datHeader ? type : `bytes:${b.length}`);
    return write(b);
  };
  return seen;
}

/** A gateway and an agent mux past their HELLO, and the gateway link's writes from then on. */
async function negotiated(t: TestContext): Promise<ReturnType<typeof pair> & { writes: string[] }> {
  const p = pair();
  t.after(() => { p.g.destroy(); p.a.destroy(); });
  await p.negotiated();
  return { ...p, writes: spyWrites(p.gatewayLink) };
}

test('open() holds OPN back until the session first writes; then OPN and DAT leave together, in order', async (t) => {
  const { g, opened, writes, roundTrip } = await negotiated(t);
  const s = g.open(80, '10.0.0.7');
  await immediate(); // the point: OPN is still held after one check phase
  assert.deepEqual(writes, [], 'nothing on the link one check phase after open()');
  s.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
  // Synchronously, in one corked batch: the held OPN first, then the DAT frame (header, payload).
  assert.deepEqual(writes, ['OPN', 'DAT', 'bytes:18']);
  await roundTrip(); // the OPN and the DAT have been read, and the DAT delivered to the inbox
  assert.equal(opened.length, 1);
  assert.equal(opened[0]!.id, s.id);
  const r = recorder();
  opened[0]!.attach(r, () => undefined);
  assert.equal(Buffer.concat(r.chunks).toString(), 'GET / HTTP/1.1\r\n\r\n');
});

test('a session that sends nothing still gets its OPN out a loop turn later (a server that speaks first)', async (t) => {
  const { g, opened, writes } = await negotiated(t);
  const s = g.open(22, '10.0.0.7');
  // The point: three check phases is the bound this test sets for "a loop turn later".
  await immediate();
  await immediate();
  await immediate();
  assert.deepEqual(writes, ['OPN']);
  await until(() => opened.length === 1, 'the OPN at the agent');
  assert.equal(opened.length, 1);
  // The agent side answers first, as an SSH server would, and the bytes reach the opener.
  const r = recorder();
  s.attach(r, () => undefined);
  opened[0]!.write(Buffer.from('SSH-2.0-test\r\n'));
  await until(() => r.bytes >= 14, 'the banner at the opener');
  assert.equal(Buffer.concat(r.chunks).toString(), 'SSH-2.0-test\r\n');
});

test('a session that ends or aborts before its OPN left sends OPN first, then FIN or CLS', async (t) => {
  const { g, opened, writes, roundTrip } = await negotiated(t);
  const ended = g.open(1, '10.0.0.7');
  ended.end();
  const aborted = g.open(2, '10.0.0.7');
  aborted.close();
  assert.deepEqual(writes, ['OPN', 'CMD', 'OPN', 'CLS']);
  await roundTrip(); // all four frames have been read
  assert.equal(opened.length, 2);
  const r0 = recorder(), r1 = recorder();
  opened[0]!.attach(r0, () => undefined);
  opened[1]!.attach(r1, () => undefined);
  assert.equal(r0.ended, true, 'the first session was half-closed');
  assert.equal(opened[1]!.closed, true, 'the second was closed');
});
