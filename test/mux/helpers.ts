import { duplexPair, type Duplex } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { Mux, type MuxInit } from '../../src/mux/mux.ts';
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

export function pair(gw: Partial<MuxInit> = {}, ag: Partial<MuxInit> = {}): { g: Mux; a: Mux; opened: MuxSession[]; gatewayLink: Duplex; agentLink: Duplex } {
  const [x, y] = duplexPair();
  const opened: MuxSession[] = [];
  const g = new Mux(x, { role: 'gateway', keepaliveMs: 0, ...gw });
  const a = new Mux(y, { role: 'agent', keepaliveMs: 0, onOpen: (s) => opened.push(s), ...ag });
  return { g, a, opened, gatewayLink: x, agentLink: y };
}

export async function settle(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await tick();
}
