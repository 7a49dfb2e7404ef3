import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { rendezvous } from '../../src/p2p/coord-client.ts';
import { Coordinator } from '../../src/p2p/coordinator.ts';

// dk connect hands one AbortSignal (its path's) to every punch of a link's life: each
// rendezvous must take its abort listener off again, whatever its outcome, or a link that
// punches for hours piles up listeners (and Node warns after 10).

test('rendezvous leaves no abort listener on the signal: after a go, after a failure, and starts none on an aborted signal', async () => {
  const c = new Coordinator({ host: '127.0.0.1' });
  const { port } = await c.listen();
  const abort = new AbortController();
  try {
    for (let i = 0; i < 3; i++) {
      const [a, b] = await Promise.all([
        rendezvous({ host: '127.0.0.1', port, session: `s-${i}`, signal: abort.signal }),
        rendezvous({ host: '127.0.0.1', port, session: `s-${i}` }),
      ]);
      a.socket.destroy();
      b.socket.destroy();
    }
    assert.equal(getEventListeners(abort.signal, 'abort').length, 0, 'none left after three gos');
  } finally {
    await c.close();
  }
  // A coordinator that closes at once: the rendezvous fails, and its listener goes too.
  const closer = createServer((s) => s.destroy());
  await new Promise<void>((r) => closer.listen(0, '127.0.0.1', r));
  try {
    const closerPort = (closer.address() as { port: number }).port;
    await assert.rejects(rendezvous({ host: '127.0.0.1', port: closerPort, session: 'x', signal: abort.signal, timeoutMs: 5000 }), /closed the connection|ECONNRESET/);
    assert.equal(getEventListeners(abort.signal, 'abort').length, 0, 'none left after a failure');
    // Already aborted: it fails at once, not after its timeout, and connects to no one.
    abort.abort();
    let accepted = 0;
    closer.on('connection', () => accepted++);
    await assert.rejects(rendezvous({ host: '127.0.0.1', port: closerPort, session: 'y', signal: abort.signal, timeoutMs: 60_000 }), /stopped/);
    assert.equal(accepted, 0);
  } finally {
    closer.close();
  }
});
