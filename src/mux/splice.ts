import type { CloseReason, MuxSession } from './session.ts';

/**
 * Joins two mux sessions of different links, both ways (the gateway between a `dk connect`
 * client and an agent). Credit is end to end: a session reports bytes as consumed only once the
 * other session has sent them on, so what waits here is bounded by the receive window of each
 * side, and a stalled reader at one end stalls only its own sender.
 * - data in on one side → write() on the other;
 * - FIN → end() on the other (half-close travels);
 * - an abort (CLS from a flow peer, our own close, a lost link) → close() on the other; a CLS
 *   from a seed-only peer is its normal end and becomes end().
 * `onClose` runs once, when both sessions are over, with the first one's reason.
 */
export function splice(a: MuxSession, b: MuxSession, onClose?: (reason: CloseReason) => void): void {
  let first: CloseReason | null = null;
  let open = 2;
  const closed = (reason: CloseReason): void => {
    first ??= reason;
    if (--open === 0) onClose?.(first);
  };
  const reports = new Map<MuxSession, () => void>();
  // Bytes `from` received and handed to `to`: reported as consumed once `to` has sent them.
  const forward = (from: MuxSession, to: MuxSession): void => {
    let received = 0;
    // A write may call back into report() (the other session drained at once); the sink reports
    // after its loop instead, so credit never runs ahead of the bytes handed on.
    let writing = false;
    const report = (): void => {
      if (writing) return;
      from.consumed(received - to.pendingBytes);
      from.congested(to.pendingBytes > 0);
    };
    reports.set(from, report);
    from.attach({
      data(buf) {
        writing = true;
        received += buf.length;
        to.write(buf);
        writing = false;
        report();
      },
      dataMany(bufs, bytes) {
        writing = true;
        received += bytes;
        to.writeMany(bufs);
        writing = false;
        report();
      },
      end() {
        to.end();
      },
      close(reason) {
        closed(reason);
        const abort = reason === 'local' || reason === 'link' || (reason === 'remote' && from.flow);
        if (abort) to.close();
        else to.end();
      },
    // `from`'s own queue went out: the bytes it took from `to` are gone, so `to` may get more credit.
    }, () => reports.get(to)?.());
  };
  forward(a, b);
  forward(b, a);
}
