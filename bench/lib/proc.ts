/**
 * Reads CPU time and resident memory of processes (and their descendants) from /proc, so the
 * benchmark can charge each contender for exactly the processes that make up its tunnel.
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICK = 100; // USER_HZ on Linux

function stat(pid: number): { ppid: number; cpu: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // fields after the name: state(0) ppid(1) ... utime(11) stime(12)
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / TICK };
  } catch {
    return null;
  }
}

/** The pids given plus all their descendants that are alive now. */
export function tree(roots: number[]): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    const pid = Number(d);
    if (!Number.isInteger(pid)) continue;
    const s = stat(pid);
    if (s) parent.set(pid, s.ppid);
  }
  const set = new Set(roots.filter((p) => parent.has(p)));
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, pp] of parent) if (!set.has(pid) && set.has(pp)) { set.add(pid); grew = true; }
  }
  return [...set];
}

/** CPU seconds (user + system) used so far by the processes. */
export function cpuSeconds(pids: number[]): number {
  let t = 0;
  for (const p of pids) t += stat(p)?.cpu ?? 0;
  return t;
}

/** Resident set size in bytes (VmRSS) summed over the processes. */
export function rss(pids: number[]): number {
  let t = 0;
  for (const p of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) t += Number(m[1]) * 1024;
    } catch { /* gone */ }
  }
  return t;
}
