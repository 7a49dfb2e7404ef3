import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { startRendezvous } from '../helpers/rustdesk.ts';

/**
 * A WebSocket client that sends pings and never reads: the server answers every ping with a pong
 * it cannot deliver, so unless it notices, the pongs pile up in its memory at the rate the client
 * sends (pings do not count as messages for the idle deadline either). Both WebSocket ports
 * (rendezvous N+2, relay N+3) must close such a client once a bounded amount is queued for it.
 */
const FLOOD = 32 * 1024 * 1024;

async function flood(port: number): Promise<{ closed: boolean; sent: number }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { localAddress: '127.0.0.31' });
  ws.on('error', () => undefined);
  await once(ws, 'open');
  const sock = (ws as unknown as { _socket: Socket })._socket;
  sock.pause(); // never read again: pongs stay with the server
  const payload = Buffer.alloc(125, 0x70);
  let sent = 0;
  let closed = false;
  ws.once('close', () => { closed = true; });
  sock.once('close', () => { closed = true; });
  while (sent < FLOOD && !closed) {
    // Pings as fast as our own socket takes them; wait when our buffer is full.
    while (sock.writableLength < 1 << 20 && sent < FLOOD && !closed) {
      ws.ping(payload);
      sent += payload.length + 6;
    }
    await new Promise((r) => setTimeout(r, 5));
    // A server that reset the connection shows up as a write error here.
    if (sock.destroyed) closed = true;
  }
  for (let i = 0; i < 40 && !closed; i++) await new Promise((r) => setTimeout(r, 50));
  ws.terminate();
  return { closed, sent };
}

test('a ping flood from a client that never reads is cut off on both WebSocket ports', async () => {
  const f = await startRendezvous();
  try {
    const ports = f.rdv.ports();
    for (const [name, port] of [['rendezvous N+2', ports.ws_port], ['relay N+3', ports.relay_ws_port]] as const) {
      const r = await flood(port!);
      console.log(`# ${name}: ${(r.sent / 1048576).toFixed(1)} MiB of pings sent, closed by the server: ${r.closed}`);
      assert.ok(r.closed, `${name}: still open after ${(r.sent / 1048576).toFixed(1)} MiB of pings it never read the pongs of`);
    }
  } finally {
    await f.close();
  }
});
