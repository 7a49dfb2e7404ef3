import { duplexPair, type Duplex } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { Mux, type MuxInit } from '../../src/mux/mux.ts';
import type { CmdFrame } from '../../src/protocol/index.ts';
import type { MuxSession, SessionSink, CloseReason } from '../../src/mux/session.ts';

export interface Recorder extends SessionSink {
  chunks: Buffer[];
  ended: boolean;
  reason: CloseReason | null;
  bytes: number;
}
export function recorder(): Recorder {
  const r: Recorder = {
    chunks: [], ended: false, reason: null, bytes: 0,
    data(b) { r.chunks.push(b); r.bytes += b.length; },
    end() { r.ended = true; },
    close(reason) { r.reason = reason; },
  };
  return r;
}

/**
 * A command no DK version defines, used as a test probe: a peer passes unknown commands to
 * onCommand (docs/protocol.md, "unknown commands are ignored"), where pair() answers it.
 * params[0] is 0 for the probe and 1 for its answer.
 */
const PROBE = 0xee;

export interface Pair {
  g: Mux;
  a: Mux;
  opened: MuxSession[];
  gatewayLink: Duplex;
  agentLink: Duplex;
  /** HELLO has gone both ways: both sides know the peer's window and the features in use. */
  negotiated: () => Promise<void>;
  /**
   * A probe from `from` to its peer and the answer back. The link is ordered, so once it returns,
   * every frame either side wrote before has been read and handled by the other side, including
   * the work the mux defers (delivery on the next tick, a held OPN): the state a negative check
   * ("nothing more arrived", "still open") needs. Frames that those frames then cause (CREDIT,
   * more DAT) may still be on their way.
   */
  roundTrip: (from?: 'g' | 'a') => Promise<void>;
}

export function pair(gw: Partial<MuxInit> = {}, ag: Partial<MuxInit> = {}): Pair {
  const [x, y] = duplexPair();
  const opened: MuxSession[] = [];
  const answered = new Set<number>();
  let nextProbe = 1;
  const probes = (self: () => Mux, next?: (f: CmdFrame) => void) => (f: CmdFrame): void => {
    if (f.command !== PROBE) { next?.(f); return; }
    // Answered two check phases later, the longest the mux defers its own work (a held OPN): by
    // then whatever the peer deferred before the probe arrived has run too.
    if (f.params[0] === 0) setImmediate(() => setImmediate(() => self().command(f.id, PROBE, Buffer.from([1]))));
    else answered.add(f.id);
  };
  const g: Mux = new Mux(x, { role: 'gateway', keepaliveMs: 0, ...gw, onCommand: probes(() => g, gw.onCommand) });
  const a: Mux = new Mux(y, { role: 'agent', keepaliveMs: 0, onOpen: (s) => opened.push(s), ...ag, onCommand: probes(() => a, ag.onCommand) });
  return {
    g, a, opened, gatewayLink: x, agentLink: y,
    negotiated: () => until(() => g.peerHello !== null && a.peerHello !== null, 'HELLO both ways'),
    async roundTrip(from = 'g') {
      const id = nextProbe++;
      (from === 'g' ? g : a).command(id, PROBE, Buffer.from([0]));
      await until(() => {
        if (g.closed || a.closed) throw new Error(`the link closed before probe ${id} came back (a protocol error?)`);
        return answered.has(id);
      }, `the answer to probe ${id} from the ${from === 'g' ? 'gateway' : 'agent'} side`);
    },
  };
}

/**
 * Polls `cond` once per loop turn until it holds: a wait for a state, never a count of turns.
 * Fails after `timeoutMs`, naming what it waited for.
 */
export async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await tick();
  }
}
