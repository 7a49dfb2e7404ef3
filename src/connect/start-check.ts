import { ServerAuthError } from '../link/errors.ts';
import { ConnectRefusedError } from './errors.ts';

/** Refusals that a retry cannot fix: `dk connect` exits at start on these (code 3). */
const FINAL_CODES = new Set(['unauthorized', 'forbidden', 'not_found', 'refused_by_allowlist', 'bad_request', 'too_many_failures']);

export type StartVerdict =
  | { kind: 'ok' }
  /** Wrong gateway key or credentials: say so and exit with `exitCode`. */
  | { kind: 'fatal'; exitCode: number; message: string }
  /** Unreachable, offline or slow: carry on (every local connection tries again), with a warning. */
  | { kind: 'warn'; message: string };

/**
 * What the first link session attempt of `dk connect` says about its settings. It must fail at
 * start for what only the user can fix — a --gateway-key the gateway does not hold (the gateway
 * answered with a proof that fails: exit 6, as for dk agent) or a token or target the gateway
 * refuses (exit 3) — and must not for anything that passes: a gateway that is down, closes or is
 * silent, a backend offline (dk connect outlives all of these).
 */
export function judgeStart(err: unknown, gateway: string): StartVerdict {
  if (err instanceof ServerAuthError && err.answered) {
    return { kind: 'fatal', exitCode: 6, message: `the gateway at ${gateway} does not hold this --gateway-key (its answer proves another key): print the right one on the gateway with \`dk pubkey --data-dir DIR\`` };
  }
  if (err instanceof ConnectRefusedError && (err.code === 'agent_key_mismatch' || err.code === 'e2e_unavailable')) return { kind: 'fatal', exitCode: 6, message: err.message };
  if (err instanceof ConnectRefusedError && FINAL_CODES.has(err.code)) {
    const hint = err.code === 'unauthorized' ? ': check --token-file / DK_TOKEN (`dk user add` prints a token once)' : '';
    return { kind: 'fatal', exitCode: 3, message: `the gateway at ${gateway} refused: ${err.code}: ${err.message}${hint}` };
  }
  const e = err as Error & { code?: string };
  return { kind: 'warn', message: `could not check the gateway at start (${e.code ? `${e.code}: ` : ''}${e.message}); listening anyway: each local connection tries again` };
}

/** Waits for `attempt` at most `ms`; a slower answer is a warning, never a failure. */
export async function checkAtStart(attempt: Promise<unknown>, gateway: string, ms: number): Promise<StartVerdict> {
  let timer: NodeJS.Timeout | undefined;
  const slow = new Promise<StartVerdict>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'warn', message: `no answer from the gateway at ${gateway} within ${ms / 1000} s; listening anyway: each local connection tries again` }), ms);
    timer.unref();
  });
  try {
    return await Promise.race([attempt.then((): StartVerdict => ({ kind: 'ok' }), (e: unknown) => judgeStart(e, gateway)), slow]);
  } finally {
    clearTimeout(timer);
  }
}
