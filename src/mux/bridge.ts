import type { Duplex } from 'node:stream';
import type { CloseReason, MuxSession } from './session.ts';

/**
 * Joins a session to a local TCP socket, both ways, with backpressure and half-close:
 * - socket data → session.write(); when the session cannot take more, the socket is paused
 *   until the session drains (credit or link drain);
 * - session data → socket.write(); consumption is reported as the bytes that left the socket's
 *   buffer, so the peer's credit never exceeds what this socket has really taken;
 * - socket FIN → session.end(); session FIN → socket.end() (half-close end to end);
 * - either side closing for good tears the other down.
 * The socket must have been created with allowHalfOpen: true. Any Duplex works (a TCP socket, or
 * a link stream from `dk connect`).
 */
export function bridge(session: MuxSession, socket: Duplex, onClose?: (reason: CloseReason) => void): void {
  let received = 0;
  let sessionReason: CloseReason | null = null;
  let socketClosed = false;
  // onClose fires once both ends are gone, with the session's reason.
  const settle = (): void => {
    if (sessionReason !== null && socketClosed) onClose?.(sessionReason);
  };
  const report = (): void => {
    session.consumed(received - socket.writableLength);
    session.congested(socket.writableNeedDrain);
  };
  session.attach({
    data(buf) {
      received += buf.length;
      socket.write(buf);
      report();
    },
    dataMany(bufs, bytes) {
      received += bytes;
      socket.cork();
      for (const b of bufs) socket.write(b);
      socket.uncork();
      report();
    },
    end() {
      socket.end();
    },
    close(reason) {
      if (reason === 'done' || reason === 'remote') {
        // Deliver what is buffered, then close; stop reading from the socket. The session's FIN
        // usually ended the socket already, and end() on a finished stream builds an error (a
        // stack trace per connection) only to drop it.
        if (!socket.writableEnded && !socket.destroyed) socket.end();
        socket.pause();
        if (socket.writableFinished) socket.destroy();
        else socket.once('finish', () => socket.destroy());
      } else {
        socket.destroy();
      }
      sessionReason = reason;
      settle();
    },
  }, () => socket.resume());
  socket.on('drain', report);
  socket.on('data', (chunk: Buffer) => {
    if (!session.write(chunk)) socket.pause();
  });
  let ended = false;
  const onEnd = (): void => {
    ended = true;
    session.end();
  };
  socket.on('end', onEnd);
  let errored = false;
  socket.on('error', () => { errored = true; }); // 'close' follows
  socket.on('close', (hadError?: boolean) => {
    // A socket that closed cleanly after its FIN leaves the session to deliver what it still
    // holds (it may be waiting for credit); one that died aborts the session.
    if (hadError || errored || !ended) session.close();
    socketClosed = true;
    settle();
  });
  // A socket whose peer closed before we got here (dk connect accepts, then waits for its link)
  // has already emitted 'end', even while paused: Node emits it once the EOF is read. Without this
  // the session would never be ended, and the socket would sit in CLOSE_WAIT for good.
  if (socket.readableEnded) onEnd();
  socket.resume(); // a stream paused by an earlier reader (the dk connect request line) must flow
}
