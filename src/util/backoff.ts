/**
 * Reconnect delay: exponential from `minMs`, capped at `maxMs`, with "equal jitter" (half fixed,
 * half random) so a fleet of agents does not reconnect in lockstep after a gateway restart.
 * Never more than maxMs, never less than half the exponential step.
 */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const step = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return step / 2 + random() * (step / 2);
}
