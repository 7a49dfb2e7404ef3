/**
 * When each side starts dialling (docs/p2p.md §5). The coordinator cannot rely on the two sides'
 * clocks agreeing, so it sends each a relative delay instead of a time: the `go` message reaches
 * side i about rtt_i / 2 after it is sent, so side i waits `start − rtt_i / 2`, where `start` is
 * after the slower side's message has arrived, plus a margin for jitter. Pure.
 */
export interface ScheduleInit {
  /** Each side's measured round trip to the coordinator, in milliseconds. */
  readonly rttA: number;
  readonly rttB: number;
  /** The least margin, whatever the RTTs (processing and timer jitter). */
  readonly minMarginMs?: number;
  /** Cap on the common start, so a bad RTT sample cannot stall a punch. */
  readonly maxStartMs?: number;
}

export const SCHEDULE_DEFAULTS = { minMarginMs: 20, maxStartMs: 2_000 } as const;

/** Each side's delay before dialling, and the common start measured from when `go` is sent. */
export function schedule(init: ScheduleInit): { delayA: number; delayB: number; startMs: number } {
  const rttA = Math.max(0, Number.isFinite(init.rttA) ? init.rttA : 0);
  const rttB = Math.max(0, Number.isFinite(init.rttB) ? init.rttB : 0);
  const slowest = Math.max(rttA, rttB);
  // Margin: one more slowest round trip covers a delayed `go`; the minimum covers a fast LAN.
  const margin = Math.max(init.minMarginMs ?? SCHEDULE_DEFAULTS.minMarginMs, slowest);
  const startMs = Math.min(init.maxStartMs ?? SCHEDULE_DEFAULTS.maxStartMs, slowest / 2 + margin);
  return {
    delayA: Math.max(0, Math.round(startMs - rttA / 2)),
    delayB: Math.max(0, Math.round(startMs - rttB / 2)),
    startMs: Math.round(startMs),
  };
}

/** The RTT estimate from samples: the smallest, as queueing only ever adds delay. */
export function rttEstimate(samples: readonly number[]): number {
  return samples.length === 0 ? 0 : Math.min(...samples);
}
