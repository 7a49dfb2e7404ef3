import { isSea } from 'node:sea';
import { setFlagsFromString } from 'node:v8';

/**
 * Settings for a process that relays bytes (gateway, agent, dk connect, the bench's Node relay).
 * One place for all of them; docs/performance.md has the measurements behind each.
 *
 * Two kinds need the process to start with them, so a relaying command re-executes itself once
 * (`process.execve`: the same PID, file descriptors and arguments) with what is missing:
 *
 * - Node flags. `--single-threaded-gc`: V8's helper GC threads compete with the data path for the
 *   cores. `--max-semi-space-size=2`: socket buffers die young, and a small young generation frees
 *   them in cheap scavenges instead of piling them up until a full mark-compact.
 *   `--no-memory-reducer`: after a quiet spell V8 shrank the heap's limits to just above what was
 *   alive; with the socket buffers counted toward those limits (below), the next burst of traffic
 *   then ran a full mark-compact every 60-80 ms for half a minute, at three times the CPU per byte.
 * - glibc malloc settings (`GLIBC_TUNABLES`; other C libraries ignore the variable). Every socket
 *   read is a fresh 64 KiB buffer. With glibc's defaults, freeing one at the top of the heap gives
 *   the memory back to the kernel (`brk`) once 128 KiB are free there, and the next read faults
 *   fresh pages in again: a relaying process could fall into doing this for every read, at about
 *   150,000 page faults a second, and move half the bytes at twice the CPU. A high trim threshold
 *   keeps freed memory for reuse; a fixed mmap threshold keeps buffers up to 4 MiB in the heap.
 *
 * Flags V8 reads while running are set from inside, after the re-exec.
 *
 * A flag or tunable the user already gave is kept as given. `DK_TUNING=off` turns all of this off.
 * Where `process.execve` does not exist (Node before 22.15, Windows), only the runtime flags apply.
 */
export const STARTUP_FLAGS: readonly string[] = ['--single-threaded-gc', '--max-semi-space-size=2', '--no-memory-reducer'];
export const MALLOC_TUNABLES: Readonly<Record<string, string>> = {
  'glibc.malloc.trim_threshold': String(256 * 2 ** 20),
  'glibc.malloc.mmap_threshold': String(4 * 2 ** 20),
};

export interface Restart {
  execArgv: string[];
  env: Record<string, string | undefined>;
}

const flagName = (f: string): string => f.split('=')[0]!.replace(/_/g, '-');

/** What a restart would add to this process's flags and environment; null when nothing is missing. */
export function restartPlan(execArgv: readonly string[], env: Readonly<Record<string, string | undefined>>): Restart | null {
  if (env.DK_TUNING === 'off') return null;
  const have = new Set(execArgv.map(flagName));
  const addFlags = STARTUP_FLAGS.filter((f) => !have.has(flagName(f)));
  const tunables = (env.GLIBC_TUNABLES ?? '').split(':').filter(Boolean);
  const set = new Set(tunables.map((t) => t.split('=')[0]));
  const addTunables = Object.entries(MALLOC_TUNABLES).filter(([k]) => !set.has(k)).map(([k, v]) => `${k}=${v}`);
  if (addFlags.length === 0 && addTunables.length === 0) return null;
  return {
    execArgv: [...addFlags, ...execArgv],
    env: { ...env, GLIBC_TUNABLES: [...tunables, ...addTunables].join(':') },
  };
}

/**
 * The argument vector that restarts this process with `execArgv` in force. A single executable
 * (packaging/sea/build.ts) takes every argument as its own, so there the Node flags travel in the
 * one `--node-options=…` argument its build lets it read (`execArgvExtension: "cli"`); its
 * `argv[1]` is the name it was started as.
 */
export function restartArgv(execArgv: readonly string[], execPath: string, argv: readonly string[], sea: boolean): string[] {
  if (!sea) return [execPath, ...execArgv, ...argv.slice(1)];
  // Node splits the option's value like NODE_OPTIONS: at spaces, outside double quotes.
  const quoted = execArgv.map((a) => (/[\s"\\]/.test(a) ? `"${a.replace(/["\\]/g, '\\$&')}"` : a));
  return [argv[1] ?? execPath, `--node-options=${quoted.join(' ')}`, ...argv.slice(2)];
}

let tuned = false;

/**
 * Call before the process opens anything: it may replace the process (re-running it from the start
 * with the settings in place), and then it does not return.
 */
export function tuneProcessForRelaying(): void {
  // bin/dk.js calls this before the CLI loads, and the CLI's command calls it again (for
  // `node src/cli/main.ts` run directly): the second call has nothing left to do.
  if (tuned || process.env.DK_TUNING === 'off') return;
  tuned = true;
  const plan = restartPlan(process.execArgv, process.env);
  if (plan && typeof process.execve === 'function') {
    process.execve(process.execPath, restartArgv(plan.execArgv, process.execPath, process.argv, isSea()), plan.env);
  }
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  // Socket reads and cipher outputs are 64 KiB buffers outside the V8 heap. By default V8 answers
  // every 64 MiB of them with a full mark-compact, several a second at tunnel speeds; with this
  // flag they count toward the heap's overall limit instead and scavenges free them. V8 before 13
  // (Node 22) does not know it.
  if (nodeMajor >= 24) setFlagsFromString('--external-memory-accounted-in-global-limit');
  // While thousands of sessions open, V8 decides that the code sites making per-session objects
  // should allocate straight into the old generation; once data flows the same sites make
  // short-lived objects per read, which then filled the old generation: a mark-compact every few
  // hundred milliseconds and half the throughput for the rest of the process's life.
  setFlagsFromString('--no-allocation-site-pretenuring');
}
