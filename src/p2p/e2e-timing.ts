/**
 * The end-to-end link's keepalive (docs/p2p.md §9): a direct path that stops carrying anything
 * (a NAT that forgot the mapping, a blackhole) is given up after DEAD_MS and the link resumes on a
 * fresh relayed transport. Both ends use these; the gateway's links keep their own (link_keepalive).
 */
export const E2E_PING_MS = 1_000;
export const E2E_DEAD_MS = 4_000;
/** How long the agent keeps an end-to-end session whose transport is gone, for the client to resume. */
export const E2E_DETACH_MS = 60_000;
/** A punch's own deadline once both sides have their `go`. */
export const E2E_PUNCH_DEADLINE_MS = 3_000;
/**
 * The gateway says "keep" for each end-to-end link whose client it still allows, every
 * E2E_KEEP_MS; the agent ends a link not kept for E2E_LEASE_MS. The gateway's "end" ends a link
 * at once; the lease ends it when that "end" was lost (the agent offline then, the gateway
 * restarted), so the gateway's revocation holds even when its agent link was down.
 */
export const E2E_KEEP_MS = 5_000;
export const E2E_LEASE_MS = 30_000;
