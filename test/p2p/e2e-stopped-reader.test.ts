import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { test } from 'node:test';
import { E2eService } from '../../src/gateway/e2e-service.ts';
import { GatewayMetrics } from '../../src/gateway/metrics.ts';
import type { LinkStream } from '../../src/link/stream.ts';
import { encodeRelayHeader, RelaySide } from '../../src/p2p/relay-header.ts';
import { generateEd25519 } from '../../src/p2p/ticket.ts';
import { silentLogger } from '../../src/util/log.ts';
import { waitFor } from '../helpers/net.ts';
import { gateway } from '../helpers/stack.ts';

/**
 * Peers that stop reading, on the end-to-end path's two write paths at the gateway (docs/security.md):
 * the relayed transport (a raw pipe) and the control link's answers. Neither may queue without end.
 */
const MiB = 1024 * 1024;

async function join(port: number, side: 1 | 2, token: Buffer): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port, noDelay: true });
  s.write(encodeRelayHeader(side === 1 ? RelaySide.CLIENT : RelaySide.AGENT, token));
  await once(s, 'connect');
  return s;
}

test('a relayed transport whose far end stops reading: the gateway holds at most its queues (bounded), the sender is held back, and every byte arrives once reading resumes', async (t) => {
  const gw = await gateway();
  t.after(() => gw.cleanup());
  const relay = gw.gateway.e2e.relay;
  const token = relay.expect('mallory')!;
  const sender = await join(gw.servPort, 1, token);
  const stalled = await join(gw.servPort, 2, token);
  t.after(() => { sender.destroy(); stalled.destroy(); });
  await waitFor(() => relay.pairCount === 1, 5000, 'the pair');
  stalled.pause();
  const total = 128 * MiB;
  const chunk = Buffer.alloc(256 * 1024, 7);
  const sentHash = createHash('sha256');
  let written = 0;
  let peakQueued = 0;
  const heap0 = process.memoryUsage().heapUsed;
  // Write while the socket takes it; stop when it pushes back (a sender that honours backpressure).
  const pump = (): void => {
    while (written < total) {
      sentHash.update(chunk);
      written += chunk.length;
      if (!sender.write(chunk)) return void sender.once('drain', pump);
    }
    sender.end();
  };
  pump();
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, 50));
    peakQueued = Math.max(peakQueued, relay.queued());
  }
  const accepted = written - sender.writableLength;
  console.log(`# stalled reader: the sender got ${(accepted / MiB).toFixed(1)} MiB of 128 MiB into the network; the relay queued at most ${(peakQueued / 1024).toFixed(0)} KiB`);
  assert.ok(written < total, `the sender was held back (${written} of ${total} bytes written)`);
  assert.ok(peakQueued <= 2 * MiB, `the relay's queues stay bounded (${peakQueued} bytes)`);
  assert.ok(process.memoryUsage().heapUsed - heap0 < 64 * MiB, 'the gateway process did not buffer the stream');
  // Reading again: every byte, exact.
  const got = createHash('sha256');
  let received = 0;
  stalled.on('data', (c: Buffer) => { got.update(c); received += c.length; });
  stalled.resume();
  await once(stalled, 'end');
  assert.equal(received, total);
  assert.equal(got.digest('hex'), sentHash.digest('hex'));
});

/** A control link whose client never reads: writes are taken but never drained. */
class DeafClient extends Duplex {
  override _read(): void { /* the test pushes the client's lines */ }
  override _write(_c: Buffer, _e: BufferEncoding, _cb: (e?: Error | null) => void): void { /* never done: the client does not read */ }
}

test('a control link whose client does not read its answers is closed once 32 KiB of answers wait, not queued without end', async () => {
  const svc = new E2eService({ p2p: 'auto', maxSessionsPerUser: 1024, ticketKey: generateEd25519(), metrics: new GatewayMetrics(), log: silentLogger });
  const stream = new DeafClient({ writableHighWaterMark: 1024 });
  let closed = false;
  stream.on('close', () => { closed = true; });
  svc.serve(stream as unknown as LinkStream, {
    id: '1', user: 'mallory', backend: 'home', target: '127.0.0.1:22', ip: '127.0.0.1', ticketId: '00'.repeat(16), direct: true,
    // Every request is answered with an error line (the permission is gone): answers without an agent.
    agent: () => undefined, allowed: () => false,
  });
  // 600 requests a minute are allowed; each answer is ~80 bytes: more than 32 KiB before the cap on lines.
  const line = Buffer.from('{"t":"relay"}\n');
  let peak = 0;
  for (let i = 0; i < 599 && !stream.destroyed; i++) {
    stream.push(line);
    await new Promise((r) => setImmediate(r));
    peak = Math.max(peak, stream.writableLength);
  }
  assert.ok(stream.destroyed, `closed with ${peak} bytes of answers waiting`);
  await new Promise((r) => setImmediate(r));
  assert.ok(closed, 'the control link closed');
  assert.ok(peak > 16 * 1024 && peak <= 32 * 1024 + 200, `answers waited up to the cap and no further (${peak} bytes)`);
  svc.close();
});
