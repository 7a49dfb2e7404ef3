import { ServerAuthError } from '../link/errors.ts';
import type { CarryEnd } from './forwarder.ts';

/** Gateway refusal codes that mean "not you, not this" (a target outside the agent's allowlist too): exit 3 like a refused API call and dk connect -L at start. */
const DENIED = new Set(['unauthorized', 'forbidden', 'refused_by_allowlist', 'too_many_failures', 'too_many_links']);
/** The gateway could not be reached or the link failed: exit 5 like an unreachable API. */
const UNREACHABLE = new Set(['link', 'late', 'closed', 'DK_LINK_SERVER_AUTH', 'DK_LINK_HANDSHAKE', 'DK_LINK_SESSION_LOST', 'ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * `dk connect --stdio`'s exit code and its one stderr line, from how its session ended (README,
 * "Exit codes"): 0 both sides finished; 3 refused (token, permission, rate limit, link cap);
 * 4 refused otherwise (no such backend, offline, caps) or ended without a clean close; 5 the
 * gateway unreachable or the link lost for good; 6 the gateway does not hold the pinned key. Pure, so each case is tested without a process.
 */
export function stdioExit(end: CarryEnd): { code: number; message: string | null } {
  if ('refused' in end) {
    const { code, message, cause } = end.refused;
    // A gateway that answered the handshake without proving the pinned key: the key is wrong (6, as for dk agent).
    if (cause instanceof ServerAuthError && cause.answered) return { code: 6, message: `the gateway at the far end does not hold the pinned --gateway-key: ${message}` };
    if (code === 'agent_key_mismatch' || code === 'e2e_unavailable') return { code: 6, message };
    const exit = DENIED.has(code) ? 3 : UNREACHABLE.has(code) ? 5 : 4;
    return { code: exit, message: `the gateway refused the session (${code}): ${message}` };
  }
  switch (end.reason) {
    case 'done': return { code: 0, message: null };
    case 'remote': return end.bytesIn === 0
      ? { code: 4, message: 'the session was closed before any byte arrived: the gateway or the agent refused the target, or it could not be reached (see dk audit and the agent\'s log)' }
      : { code: 4, message: 'the far side aborted the session (a reset, not a clean close)' };
    case 'link': return { code: 5, message: 'the link to the gateway was lost and did not resume in time; the session is gone' };
    case 'local': return { code: 4, message: 'stdin or stdout failed; the session was aborted' };
  }
}
