import { rendezvous } from './coord-client.ts';
import { E2E_PUNCH_DEADLINE_MS } from './e2e-timing.ts';
import { punch, type PunchResult } from './punch.ts';
import { COORD_MAGIC } from './relay-header.ts';

/** How long a side waits at the gateway's coordinator for its `go`. */
const GO_WAIT_MS = 10_000;

/**
 * One punch of the end-to-end path (docs/p2p.md §9.4), the same on both sides: join `session` at
 * the gateway's coordinator on serv_port ("DKC1"), then punch from the port whose mapping it
 * observed, within E2E_PUNCH_DEADLINE_MS. The connection to the coordinator is closed whatever
 * the outcome; a winning connection is the caller's.
 */
export async function punchSession(o: { host: string; port: number; session: string; signal: AbortSignal }): Promise<PunchResult> {
  const r = await rendezvous({ host: o.host, port: o.port, session: o.session, prefix: COORD_MAGIC, timeoutMs: GO_WAIT_MS, signal: o.signal });
  try {
    return await punch({
      localPort: r.localPort, candidates: r.candidates, role: r.go.role, token: r.token, delayMs: r.go.delayMs, deadlineMs: E2E_PUNCH_DEADLINE_MS, signal: o.signal,
    });
  } finally {
    r.socket.destroy();
  }
}
