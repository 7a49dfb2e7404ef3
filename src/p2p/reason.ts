import { formatCandidate, type Candidate } from './candidate.ts';

/**
 * Why one candidate did not become the direct path (docs/p2p.md §4 explains each):
 *   timeout             no answer before the punch's deadline (a NAT that drops, or a symmetric NAT's new port)
 *   refused             RST in answer to our SYN: the peer's router or host was not expecting us (the SYNs did not cross)
 *   reset               the connection formed and was reset before both sides agreed on it
 *   unreachable         ICMP unreachable: no route to the address (a LAN address seen from another network)
 *   addr-in-use         the local port could not be shared (a listener on it, or the first socket was not bound explicitly)
 *   addr-not-available  the same address pair is still in use (a second dial of a pending candidate, or TIME_WAIT)
 *   bad-select          a connection formed but the other end did not prove it is the peer (wrong token or bytes)
 *   no-select           a connection formed but the peer chose none before the deadline
 *   lost                a connection formed but the peer chose another candidate (not a failure)
 *   error               any other socket error (its code in `detail`)
 */
export type FailureReason = 'timeout' | 'refused' | 'reset' | 'unreachable' | 'addr-in-use' | 'addr-not-available' | 'bad-select' | 'no-select' | 'lost' | 'error';

export interface CandidateOutcome {
  readonly candidate: Candidate;
  /** Connection attempts made to it (each a new socket from the same local port). */
  readonly attempts: number;
  /** `won` for the candidate that became the direct path. */
  readonly reason: FailureReason | 'won';
  /** The system error code or other detail, when there is one. */
  readonly detail?: string | undefined;
}

/** What a punch did, without its socket: what reports, metrics and tests look at. */
export interface PunchReport {
  readonly ok: boolean;
  /** Milliseconds from the first dial to the result. */
  readonly ms: number;
  /** The candidate that became the direct path, when ok. */
  readonly candidate?: Candidate | undefined;
  /** Every candidate in the order dialled, with what happened to it. */
  readonly outcomes: readonly CandidateOutcome[];
  /** The whole punch's deadline in milliseconds (for the failure text). */
  readonly deadlineMs: number;
}

const BY_CODE: Readonly<Record<string, FailureReason>> = {
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  ECONNABORTED: 'reset',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  EHOSTDOWN: 'unreachable',
  ENETDOWN: 'unreachable',
  EADDRINUSE: 'addr-in-use',
  EADDRNOTAVAIL: 'addr-not-available',
  ETIMEDOUT: 'timeout',
};

/** The reason of a socket error, with its code as detail. */
export function reasonOfError(err: unknown): { reason: FailureReason; detail: string } {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string') return { reason: BY_CODE[code] ?? 'error', detail: code };
  return { reason: 'error', detail: err instanceof Error ? err.message : String(err) };
}

/** Whether dialling the candidate again from the same port may work: the peer's SYN may arrive in between. */
export function retryable(reason: FailureReason): boolean {
  return reason === 'refused' || reason === 'reset';
}

function outcomeText(o: CandidateOutcome): string {
  const detail = o.detail !== undefined && o.detail.toLowerCase() !== o.reason ? ` (${o.detail})` : '';
  const tries = o.attempts > 1 ? ` after ${o.attempts} tries` : '';
  return `${formatCandidate(o.candidate)} ${o.reason}${detail}${tries}`;
}

/**
 * The plain-text reason a punch failed: the deadline and each candidate with what happened, e.g.
 * `no direct path in 3000 ms: public 198.18.2.2:40000 timeout; lan 198.19.2.2:40000 unreachable (EHOSTUNREACH)`.
 */
export function failureText(report: PunchReport): string {
  if (report.outcomes.length === 0) return 'no direct path: the peer has no candidate this side can dial';
  const how = report.ms >= report.deadlineMs ? `in ${report.deadlineMs} ms` : `(every candidate failed in ${report.ms} ms)`;
  return `no direct path ${how}: ${report.outcomes.map(outcomeText).join('; ')}`;
}

/**
 * The one-line report `dk connect` prints for a path decision (logfmt, the reason quoted):
 *   path=direct via="public 198.18.2.2:40000" ms=3 attempts=1
 *   path=relay reason="no direct path in 3000 ms: public 198.18.2.2:40000 timeout"
 */
export function pathLine(report: PunchReport): string {
  if (report.ok && report.candidate !== undefined) {
    const won = report.outcomes.find((o) => o.reason === 'won');
    return `path=direct via=${JSON.stringify(formatCandidate(report.candidate))} ms=${report.ms} attempts=${won?.attempts ?? 1}`;
  }
  return `path=relay reason=${JSON.stringify(failureText(report))}`;
}
