import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { eventually, freePort } from './cli.ts';
import { tempDir } from './stack.ts';

export interface SmokeResult {
  /** What the gateway printed on stdout (the first-start banner). */
  out: string;
  err: string;
  /** The gateway's command line as the kernel saw it once it was serving (after any restart). */
  cmdline: string[];
}

/**
 * Runs `FILE gateway` the way a user of an installed dk would: loopback ports, a fresh data dir.
 * Waits until /healthz answers, stops it with SIGTERM and asserts it exited 0.
 */
export async function smokeGateway(file: string, env: NodeJS.ProcessEnv): Promise<SmokeResult> {
  const [serv, mgmt] = [await freePort(), await freePort()];
  const args = ['gateway', '--bind', '127.0.0.1', '--serv-port', String(serv), '--mgmt-port', String(mgmt), '--data-dir', `${tempDir()}/data`];
  const p = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  p.stderr.on('data', (c: Buffer) => { err += c.toString(); });
  const exited = once(p, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  let done = false;
  void exited.then(() => { done = true; });
  try {
    let health: unknown;
    await eventually(async () => {
      if (done) throw new Error(`the gateway exited before it served: ${err}`);
      health = await fetch(`http://127.0.0.1:${mgmt}/healthz`).then((r) => r.json(), () => undefined);
      return health !== undefined;
    }, 30_000, () => `/healthz on port ${mgmt}; stderr: ${err}`);
    assert.equal((health as { status?: string }).status, 'ok');
    const cmdline = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    p.kill('SIGTERM');
    const [code, signal] = await exited;
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, `exit after SIGTERM; stderr: ${err}`);
    return { out, err, cmdline };
  } finally {
    if (!done) p.kill('SIGKILL');
  }
}
