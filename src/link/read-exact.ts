import type { Duplex } from 'node:stream';
import { HandshakeError, HandshakeTimeoutError } from './errors.ts';

/**
 * Reads exactly `n` bytes from a transport during a handshake, with a deadline. The transport is
 * left paused and any bytes past `n` are returned, so nothing is lost between steps.
 */
export function readExact(socket: Duplex, n: number, timeoutMs: number, buffered: Buffer = Buffer.alloc(0)): Promise<{ msg: Buffer; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = buffered;
    const done = (err: Error | null): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
      socket.pause();
      if (err) reject(err);
      else resolve({ msg: buf.subarray(0, n), rest: Buffer.from(buf.subarray(n)) });
    };
    const onData = (c: Buffer): void => {
      buf = buf.length === 0 ? c : Buffer.concat([buf, c]);
      if (buf.length >= n) done(null);
    };
    const onClose = (): void => done(new HandshakeError(`connection closed during the handshake (had ${buf.length} of ${n} bytes)`));
    const onError = (e: Error): void => done(new HandshakeError(`connection failed during the handshake: ${e.message}`));
    const timer = setTimeout(() => done(new HandshakeTimeoutError(timeoutMs)), timeoutMs);
    timer.unref();
    if (buf.length >= n) {
      done(null);
      return;
    }
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.once('error', onError);
    socket.resume();
  });
}
