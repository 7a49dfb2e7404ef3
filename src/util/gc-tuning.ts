import { setFlagsFromString } from 'node:v8';

/**
 * Socket reads and cipher outputs are fresh 64 KiB ArrayBuffers, whose memory lives outside the
 * V8 heap. By default V8 answers every 64 MiB of such allocations with a full mark-compact, which
 * at tunnel speeds means several per second: a quarter of a relaying process's CPU went to them
 * (docs/performance.md). With this flag the external bytes count toward the heap's overall limit
 * instead, and the short-lived buffers are freed by scavenges. The flag is read at each
 * allocation check, so setting it after start-up works; V8 before 13 (Node 22) does not know it.
 */
export function tuneGcForRelaying(): void {
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  if (nodeMajor >= 24) setFlagsFromString('--external-memory-accounted-in-global-limit');
}
