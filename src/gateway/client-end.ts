import type { Duplex } from 'node:stream';
import { bridge } from '../mux/bridge.ts';
import type { CloseReason, MuxSession } from '../mux/session.ts';
import { splice } from '../mux/splice.ts';

/**
 * The client's end of a tunnelled session, whatever carries it: a TCP socket on an access port or
 * a static tunnel, a `dk connect` link stream (the older one-session form), or a `dk connect`
 * client's mux session. The session table joins it to the agent's session and can close it.
 */
export interface ClientEnd {
  /** The client's source port (0 when there is none, as inside a link). */
  readonly port: number;
  /** Bytes waiting to go to the client (the slow-reader test watches it). */
  readonly buffered: number;
  /** Joins this end to the agent's session both ways; `onEnd` runs once, when both are over. */
  join(session: MuxSession, onEnd: (reason: CloseReason) => void): void;
  /** Ends it at once (kill, revoke, refusal). */
  close(): void;
}

/** A byte stream (a socket, a link stream): joined with bridge(), ended by destroy(). */
export function streamEnd(stream: Duplex, port: number): ClientEnd {
  return {
    port,
    get buffered() { return stream.writableLength; },
    join: (session, onEnd) => bridge(session, stream, onEnd),
    close: () => stream.destroy(),
  };
}

/** A `dk connect` client's mux session: joined with splice(), ended with CLS. */
export function muxEnd(session: MuxSession, port: number): ClientEnd {
  return {
    port,
    get buffered() { return session.pendingBytes; },
    join: (agentSide, onEnd) => splice(session, agentSide, onEnd),
    close: () => session.close(),
  };
}
