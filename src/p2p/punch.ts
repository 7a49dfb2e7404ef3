import { timingSafeEqual } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Candidate } from './candidate.ts';
import { P2pError } from './errors.ts';
import { reasonOfError, retryable, type CandidateOutcome, type FailureReason, type PunchReport } from './reason.ts';
import { SELECT_BYTES, TOKEN_BYTES, decodeSelect, encodeSelect } from './select.ts';

/**
 * TCP simultaneous open (docs/p2p.md §3, SPEC §7b). Both sides call `punch` at the same moment
 * (the coordinator's delay), each from the local port whose NAT mapping the coordinator observed,
 * dialling every candidate of the other. A SYN that leaves through a NAT opens that NAT for the
 * peer's SYN; when the two cross, the kernel completes one connection from both ends.
 *
 * The rules measured in the NAT lab, each of which made punching fail when broken:
 *  - dial from the port explicitly (`localPort`, `localAddress`); libuv sets SO_REUSEADDR, so the
 *    socket to the coordinator may stay open on the same port. A listener on the port would block it;
 *  - keep a pending socket: a second dial of the same candidate from the same port while the first
 *    is pending fails with EADDRNOTAVAIL; the kernel retransmits the SYN itself;
 *  - redial a candidate only after its socket closed with RST (refused), at most `maxAttempts` times;
 *  - `resetAndDestroy()` every loser: a graceful close holds the address pair (~1 s TIME_WAIT) and
 *    a later punch between the same ports would fail.
 * Every socket and timer ends by the deadline, and the result says which candidate won or, for
 * each candidate, why it failed.
 */
export type PunchRole = 'initiator' | 'responder';

export interface PunchInit {
  /** The port to dial from: the one whose public mapping the coordinator observed. */
  readonly localPort: number;
  /** The local address to bind; `0.0.0.0` (IPv4) unless given. */
  readonly localAddress?: string;
  /** The peer's candidates, in the order to dial them (candidate.ts `orderCandidates`). */
  readonly candidates: readonly Candidate[];
  /** The coordinator says which side sends SELECT (select.ts). */
  readonly role: PunchRole;
  /** The punch's token from the coordinator (TOKEN_BYTES bytes). */
  readonly token: Uint8Array;
  /** Milliseconds to wait before dialling: the coordinator's delay to the common start. */
  readonly delayMs?: number;
  /** The whole punch from the first dial, in milliseconds. */
  readonly deadlineMs?: number;
  /** Dials per candidate (the first and the redials after RST). */
  readonly maxAttempts?: number;
  /** Pause before a redial. */
  readonly retryDelayMs?: number;
  readonly signal?: AbortSignal;
  readonly now?: () => number;
}

export const PUNCH_DEFAULTS = { deadlineMs: 5_000, maxAttempts: 3, retryDelayMs: 50 } as const;
const LIMITS = { deadlineMs: [1, 60_000], maxAttempts: [1, 20], retryDelayMs: [0, 5_000], delayMs: [0, 10_000] } as const;

export interface PunchSuccess extends PunchReport {
  readonly ok: true;
  readonly candidate: Candidate;
  /**
   * The direct connection, paused, with nothing of ours left on it; bytes the peer sent right
   * after the select exchange are pushed back (unshift), so `resume()`/`pipe()` delivers every byte.
   * It allows half-open (the owner ends its side when it is done) and has no 'error' listener any
   * more: attach one.
   */
  readonly socket: Socket;
}
export interface PunchFailure extends PunchReport {
  readonly ok: false;
}
export type PunchResult = PunchSuccess | PunchFailure;

interface Attempt {
  readonly candidate: Candidate;
  attempts: number;
  socket: Socket | undefined;
  /** The current socket has connected (a reset after that is not redialled: the peer chose another). */
  connected: boolean;
  reason: FailureReason | undefined;
  detail: string | undefined;
  retry: NodeJS.Timeout | undefined;
  done: boolean;
}

function bounded(name: keyof typeof LIMITS, value: number): number {
  const [lo, hi] = LIMITS[name];
  if (!Number.isFinite(value) || value < lo || value > hi) throw new P2pError('DK_P2P_CONFIG', `punch ${name} must be within ${lo}..${hi}, got ${value}`);
  return value;
}

export async function punch(init: PunchInit): Promise<PunchResult> {
  const deadlineMs = bounded('deadlineMs', init.deadlineMs ?? PUNCH_DEFAULTS.deadlineMs);
  const maxAttempts = bounded('maxAttempts', init.maxAttempts ?? PUNCH_DEFAULTS.maxAttempts);
  const retryDelayMs = bounded('retryDelayMs', init.retryDelayMs ?? PUNCH_DEFAULTS.retryDelayMs);
  const delayMs = bounded('delayMs', init.delayMs ?? 0);
  if (init.token.length !== TOKEN_BYTES) throw new P2pError('DK_P2P_CONFIG', `punch token must be ${TOKEN_BYTES} bytes`);
  const now = init.now ?? (() => performance.now());
  const localAddress = init.localAddress ?? '0.0.0.0';
  const token = Buffer.from(init.token);
  const mine = init.role === 'initiator' ? 'ack' : 'select';

  if (delayMs > 0) await sleep(delayMs, undefined, { signal: init.signal }).catch(() => undefined);
  const started = now();
  const attempts: Attempt[] = init.candidates.map((candidate) => ({ candidate, attempts: 0, socket: undefined, connected: false, reason: undefined, detail: undefined, retry: undefined, done: false }));
  const report = (ok: boolean, winner?: Attempt): { ms: number; outcomes: CandidateOutcome[]; deadlineMs: number } => ({
    ms: Math.round(now() - started),
    deadlineMs,
    outcomes: attempts.map((a): CandidateOutcome => {
      if (a === winner) return { candidate: a.candidate, attempts: a.attempts, reason: 'won' };
      if (a.done || a.reason !== undefined) return { candidate: a.candidate, attempts: a.attempts, reason: a.reason ?? 'error', detail: a.detail };
      if (ok) return { candidate: a.candidate, attempts: a.attempts, reason: 'lost', detail: a.connected ? 'connected' : 'pending' };
      return { candidate: a.candidate, attempts: a.attempts, reason: a.connected ? 'no-select' : 'timeout' };
    }),
  });
  if (attempts.length === 0 || init.signal?.aborted) return { ok: false, ...report(false) };

  return new Promise<PunchResult>((resolve) => {
    let finished = false;
    const finish = (winner?: { attempt: Attempt; socket: Socket }): void => {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      init.signal?.removeEventListener('abort', onAbort);
      const result = report(winner !== undefined, winner?.attempt);
      for (const a of attempts) {
        clearTimeout(a.retry);
        if (a.socket !== undefined && a.socket !== winner?.socket) a.socket.resetAndDestroy();
      }
      if (winner) resolve({ ok: true, candidate: winner.attempt.candidate, socket: winner.socket, ...result });
      else resolve({ ok: false, ...result });
    };
    const onAbort = (): void => finish();
    // Ref'd on purpose: during a redial pause no socket may be open, and the punch must still end.
    const deadline = setTimeout(() => finish(), deadlineMs);
    init.signal?.addEventListener('abort', onAbort, { once: true });

    const settleIfAllDone = (): void => {
      if (attempts.every((a) => a.done)) finish();
    };

    const dial = (a: Attempt): void => {
      a.retry = undefined;
      if (finished) return;
      a.attempts++;
      a.connected = false;
      a.reason = undefined;
      a.detail = undefined;
      // allowHalfOpen: the winner's owner decides when to end its side (the link sends its own FIN).
      const s = connect({ host: a.candidate.host, port: a.candidate.port, localAddress, localPort: init.localPort, allowHalfOpen: true });
      a.socket = s;
      let buf: Buffer = Buffer.alloc(0);
      const onConnect = (): void => {
        a.connected = true;
        s.setNoDelay(true);
        if (init.role === 'initiator') s.write(encodeSelect('select', token));
      };
      const onError = (err: Error): void => {
        const r = reasonOfError(err);
        a.reason = r.reason;
        a.detail = r.detail;
      };
      const reject = (reason: FailureReason, detail: string): void => {
        a.reason = reason;
        a.detail = detail;
        s.resetAndDestroy();
      };
      const onData = (chunk: Buffer): void => {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        if (buf.length < SELECT_BYTES) return;
        let msg: ReturnType<typeof decodeSelect>;
        try {
          msg = decodeSelect(buf.subarray(0, SELECT_BYTES));
        } catch (err) {
          reject('bad-select', (err as Error).message);
          return;
        }
        if (msg.kind !== mine) { reject('bad-select', `expected ${mine}, got ${msg.kind}`); return; }
        if (!timingSafeEqual(msg.token, token)) { reject('bad-select', 'wrong token'); return; }
        if (init.role === 'responder') s.write(encodeSelect('ack', token));
        s.off('connect', onConnect);
        s.off('error', onError);
        s.off('data', onData);
        s.off('close', onClose);
        s.off('end', onEnd);
        s.pause();
        const rest = buf.subarray(SELECT_BYTES);
        if (rest.length > 0) s.unshift(rest);
        finish({ attempt: a, socket: s });
      };
      const onEnd = (): void => reject('reset', 'the other end closed before select');
      const onClose = (): void => {
        a.socket = undefined;
        if (finished) return;
        if (a.reason === undefined) {
          a.reason = 'reset';
          a.detail = a.connected ? 'closed before select' : 'closed';
        }
        const timeLeft = started + deadlineMs - now();
        if (!a.connected && retryable(a.reason) && a.attempts < maxAttempts && timeLeft > retryDelayMs) {
          a.retry = setTimeout(() => dial(a), retryDelayMs);
        } else {
          a.done = true;
          settleIfAllDone();
        }
      };
      s.on('connect', onConnect);
      s.on('error', onError);
      s.on('data', onData);
      s.on('end', onEnd);
      s.on('close', onClose);
    };

    for (const a of attempts) dial(a);
  });
}
