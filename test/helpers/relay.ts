import { once } from 'node:events';
import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import { encodeFrame } from '../../src/rendezvous/framing.ts';
import { encodeRendezvous } from '../../src/rendezvous/messages.ts';
import { RelayServer, type RelayHooks, type RelayServerOptions } from '../../src/rendezvous/relay-server.ts';
import { silentLogger } from '../../src/util/log.ts';
import { dial, sha256 } from './net.ts';

export interface Recorded {
  paired: Parameters<NonNullable<RelayHooks['paired']>>[0][];
  ended: Parameters<NonNullable<RelayHooks['ended']>>[0][];
  refused: Parameters<NonNullable<RelayHooks['refused']>>[0][];
}

/** A relay on loopback with ephemeral ports and hooks that record every event. */
export async function startRelay(over: Partial<RelayServerOptions> = {}): Promise<{ relay: RelayServer; events: Recorded }> {
  const events: Recorded = { paired: [], ended: [], refused: [] };
  const relay = await RelayServer.listen({
    bind: '127.0.0.1', tcpPort: 0, wsPort: 0, key: null, log: silentLogger,
    hooks: { paired: (i) => events.paired.push(i), ended: (i) => events.ended.push(i), refused: (i) => events.refused.push(i) },
    ...over,
  });
  return { relay, events };
}

/** The RequestRelay frame as the project's codec writes it. */
export function requestFrame(uuid: string, key = '', id = ''): Buffer {
  return encodeFrame(encodeRendezvous({ union: { case: 'requestRelay', value: { uuid, licenceKey: key, id } } }));
}

/**
 * The same frame written by hand from the .proto field numbers, independent of the codec:
 * RendezvousMessage.request_relay = 18 (tag (18<<3)|2 = 0x92 0x01), RequestRelay.uuid = 2
 * (tag 0x12), RequestRelay.licence_key = 6 (tag 0x32); one-byte lengths, a one-byte frame header
 * (payload length << 2). ASCII strings of a few bytes only.
 */
export function handRequestFrame(uuid: string, key: string): Buffer {
  const u = Buffer.from(uuid, 'ascii');
  const k = Buffer.from(key, 'ascii');
  const inner = Buffer.concat([Buffer.from([0x12, u.length]), u, ...(k.length ? [Buffer.from([0x32, k.length]), k] : [])]);
  if (inner.length > 0x7f) throw new Error('hand-written vector: keep uuid and key short');
  const payload = Buffer.concat([Buffer.from([0x92, 0x01, inner.length]), inner]);
  if (payload.length > 0x3f) throw new Error('hand-written vector: keep uuid and key short');
  return Buffer.concat([Buffer.from([payload.length << 2]), payload]);
}

/** A TCP relay half: connects and sends its RequestRelay (plus `extra` in the same write). */
export async function tcpHalf(port: number, frame: Buffer, extra: Buffer = Buffer.alloc(0), localAddress = '127.0.0.1'): Promise<Socket> {
  const s = await dial(port, localAddress);
  s.write(Buffer.concat([frame, extra]));
  return s;
}

/** A WebSocket relay half: opens and sends its RequestRelay payload as one binary message. */
export async function wsHalf(port: number, uuid: string, key = '', opts: { headers?: Record<string, string>; localAddress?: string } = {}): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, opts);
  ws.on('error', () => undefined);
  await once(ws, 'open');
  ws.send(encodeRendezvous({ union: { case: 'requestRelay', value: { uuid, licenceKey: key } } }));
  return ws;
}

/**
 * Resolves once the relay closed `s` (EOF or reset) or it was closed here; drops what it received.
 * The test's sockets are half-open capable, so EOF alone does not close them: this does.
 */
export function closed(s: Socket): Promise<void> {
  if (s.destroyed) return Promise.resolve();
  s.resume();
  return new Promise((resolve) => {
    s.once('end', () => s.destroy());
    s.once('close', () => resolve());
  });
}

/** Collects what arrives on `s` until `total` bytes came (or the socket closes); returns their hash and count. */
export function receive(s: Socket, total: number): Promise<{ hash: string; bytes: number }> {
  return new Promise((resolve) => {
    const h = sha256();
    let n = 0;
    let finished = false;
    const done = (): void => {
      if (finished) return;
      finished = true;
      s.off('data', onData);
      resolve({ hash: h.digest('hex'), bytes: n });
    };
    const onData = (c: Buffer): void => {
      h.update(c);
      n += c.length;
      if (n >= total) done();
    };
    s.on('data', onData);
    s.once('close', () => { if (n < total) done(); });
  });
}

/** Everything received on `s` until `n` bytes came; rejects if it closes first. */
export function readExactly(s: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (c: Buffer): void => {
      chunks.push(c);
      got += c.length;
      if (got >= n) {
        s.off('data', onData);
        s.off('close', onClose);
        resolve(Buffer.concat(chunks));
      }
    };
    const onClose = (): void => reject(new Error(`closed after ${got} of ${n} bytes`));
    s.on('data', onData);
    s.once('close', onClose);
  });
}
