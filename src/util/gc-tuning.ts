import { setFlagsFromString } from 'node:v8';

/**
 * V8 settings for a process that relays bytes, set at start-up (both flags are read while the
 * process runs, so setting them from inside works; docs/performance.md has the measurements).
 *
 * - `--external-memory-accounted-in-global-limit`: socket reads and cipher outputs are fresh
 *   64 KiB ArrayBuffers, whose memory lives outside the V8 heap. By default V8 answers every
 *   64 MiB of them with a full mark-compact, several per second at tunnel speeds; with the flag
 *   the external bytes count toward the heap's overall limit instead, and the short-lived buffers
 *   are freed by scavenges. V8 before 13 (Node 22) does not know it.
 * - `--no-allocation-site-pretenuring`: while thousands of sessions open, the objects and arrays
 *   made per session live long, and V8 decides to allocate what those code sites make directly in
 *   the old generation. The same sites make short-lived objects per read once data flows, so
 *   afterwards every read filled the old generation: a mark-compact every few hundred
 *   milliseconds, and half the throughput, for the rest of the process's life.
 */
export function tuneGcForRelaying(): void {
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  if (nodeMajor >= 24) setFlagsFromString('--external-memory-accounted-in-global-limit');
  setFlagsFromString('--no-allocation-site-pretenuring');
}
