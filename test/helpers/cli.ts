import { spawn, type ChildProcess, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The real `dk` command, as `npm run dk` runs it (bin/dk.js, which restarts itself once with its tuning). */
export const BIN = fileURLToPath(new URL('../../bin/dk.js', import.meta.url));

export interface Cli extends ChildProcess {
  out(): string;
  err(): string;
  /** Resolves when the process has exited, with its code (null after a signal) and signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  readonly running: () => boolean;
}

/** Spawns `node bin/dk.js ARGS…`, collecting its stdout and stderr (stdin: none, or a pipe with `stdin: 'pipe'`). */
export function dk(args: string[], opts: { cwd?: string; env?: Record<string, string>; stdin?: 'pipe' } = {}): Cli {
  const started = Date.now();
  const p = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'] }) as ChildProcessByStdio<Writable | null, Readable, Readable>;
  let out = '';
  let err = '';
  let done = false;
  p.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  p.stderr.on('data', (c: Buffer) => { err += c.toString(); });
  const exited = once(p, 'exit').then(([code, signal]) => {
    done = true;
    return { code: code as number | null, signal: signal as NodeJS.Signals | null, ms: Date.now() - started };
  });
  return Object.assign(p, { out: () => out, err: () => err, exited, running: () => !done });
}

/** Kills whatever is still running (SIGKILL) and waits for it to go. For `finally` blocks. */
export async function killAll(procs: Iterable<Cli>): Promise<void> {
  await Promise.all([...procs].map(async (p) => {
    if (!p.running()) return;
    p.kill('SIGKILL');
    await p.exited;
  }));
}

/** A TCP port that was free a moment ago (the kernel's choice, so parallel tests do not collide). */
export async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** Polls an async condition until it holds, for at most `ms`; the error names what was awaited. */
export async function eventually(cond: () => Promise<boolean> | boolean, ms: number, what: () => string): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Counts the lines of `text` that match `re`. */
export const lines = (text: string, re: RegExp): number => text.split('\n').filter((l) => re.test(l)).length;
