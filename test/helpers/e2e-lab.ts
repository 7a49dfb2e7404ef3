/**
 * The end-to-end path through real NATs (docs/p2p.md §9, SPEC §7c): a NAT lab (natlab.ts) with the
 * real `dk` in it — `dk gateway` on the public segment, `dk agent` in LAN B, the target next to it,
 * `dk connect` in LAN A — and a transfer program on each end (fixtures/stream-end.ts). The gateway's
 * namespace counts the bytes it forwards between the two NATs (the direct path) apart from what it
 * relays itself, so a test knows which path carried a transfer, not only what dk connect said.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BIN } from './cli.ts';
import { createLab, labUnavailable, LAB_ADDR, type Lab, type LabProcess, type NatMode } from './natlab.ts';
import { ADMIN, KEY, tempDir } from './stack.ts';
import { blackholeBetweenNats, bytesBetweenNats, countBetweenNats } from './nat-counters.ts';

const STREAM_END = fileURLToPath(new URL('../p2p/fixtures/stream-end.ts', import.meta.url));
export const SERV_PORT = 35357;
export const TARGET_PORT = 9000;
export const LOCAL_PORT = 2222;

export interface DkLab {
  lab: Lab;
  gatewayKey: string;
  gateway: LabProcess;
  agent: LabProcess;
  target: LabProcess;
  /** Starts `dk connect` in LAN A (-L 127.0.0.1:2222 → the target); resolves once it listens. */
  connect(extra?: string[]): Promise<LabProcess & { lines(): string[] }>;
  /** The user's program in LAN A: dials dk connect's port and moves `bytes` each way. */
  dial(bytes: number, rateMiBps?: number): LabProcess;
  /** Drops everything between the two NATs' public addresses at the gateway's segment (not what goes to the gateway). */
  blackhole(on: boolean): Promise<void>;
  /** Bytes forwarded between the two NATs (the direct path) so far, both ways. */
  directBytes(): Promise<number>;
}

async function until(cond: () => boolean, ms: number, what: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Builds the lab with these NATs and starts the gateway, the agent and the target; null (having skipped t) when the lab cannot run here. */
export async function dkLab(t: TestContext, natA: NatMode, natB: NatMode, o: { targetBytes: number; session: string }): Promise<DkLab | null> {
  const why = await labUnavailable();
  if (why !== undefined) { t.skip(why); return null; }
  const dir = tempDir();
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, ADMIN, { mode: 0o600 });
  const gatewayKey = execFileSync(process.execPath, [BIN, 'pubkey', '--data-dir', join(dir, 'gw')], { encoding: 'utf8' }).trim().split('\n').at(-1)!.trim();
  const lab = await createLab({ natA, natB });
  t.after(() => lab.close());
  await countBetweenNats(lab);
  const gateway = lab.run('pub', BIN, [
    'gateway', '--bind', LAB_ADDR.rendezvous, '--serv-port', String(SERV_PORT), '--mgmt-port', '3535', '--data-dir', join(dir, 'gw'),
    '--admin-token-file', tokenFile, '--backend', `home=${KEY}`, '--log-format', 'json',
  ]);
  await until(() => gateway.stderr().includes('gateway listening for agents'), 20_000, () => `the gateway (stderr: ${gateway.stderr().slice(-1500)})`);
  const agent = lab.run('b', BIN, [
    'agent', '--gateway', `${LAB_ADDR.rendezvous}:${SERV_PORT}`, '--name', 'home', '--key', KEY, '--gateway-key', gatewayKey,
    '--allow', '198.19.2.0/24', '--data-dir', join(dir, 'agent'), '--log-format', 'json',
  ]);
  await until(() => agent.stderr().includes('connected to gateway'), 20_000, () => `the agent (stderr: ${agent.stderr().slice(-1500)})`);
  const target = lab.run('t', STREAM_END, ['serve', '--host', LAB_ADDR.target, '--port', String(TARGET_PORT), '--bytes', String(o.targetBytes), '--session', o.session]);
  await target.next('listening');
  return {
    lab, gatewayKey, gateway, agent, target,
    async connect(extra = []) {
      const p = lab.run('a', BIN, [
        'connect', 'home', String(TARGET_PORT), LAB_ADDR.target, '-L', `127.0.0.1:${LOCAL_PORT}`,
        '--gateway', `${LAB_ADDR.rendezvous}:${SERV_PORT}`, '--gateway-key', gatewayKey, '--token-file', tokenFile, '--log-format', 'json', ...extra,
      ]);
      let stdout = '';
      p.child.stdout!.on('data', (c: Buffer) => { stdout += c.toString(); });
      await until(() => stdout.includes(`127.0.0.1:${LOCAL_PORT}`), 20_000, () => `dk connect to listen (stderr: ${p.stderr().slice(-1500)})`);
      return Object.assign(p, { lines: () => p.stderr().split('\n').filter((l) => l.startsWith('dk connect: path=')).map((l) => l.slice('dk connect: '.length)) });
    },
    dial(bytes, rate = 0) {
      return lab.run('a', STREAM_END, ['dial', '--host', '127.0.0.1', '--port', String(LOCAL_PORT), '--bytes', String(bytes), '--session', o.session, '--rate', String(rate)]);
    },
    blackhole: (on) => blackholeBetweenNats(lab, on),
    directBytes: () => bytesBetweenNats(lab),
  };
}

/** Waits for a path line matching `re` from dk connect; returns it. */
export async function pathLine(c: { lines(): string[]; stderr(): string }, re: RegExp, ms: number, from = 0): Promise<{ line: string; index: number }> {
  let found: { line: string; index: number } | null = null;
  await until(() => {
    const all = c.lines();
    for (let i = from; i < all.length; i++) if (re.test(all[i]!)) { found = { line: all[i]!, index: i }; return true; }
    return false;
  }, ms, () => `a path line matching ${re} (got: ${c.lines().join(' | ')}; stderr: ${c.stderr().slice(-1000)})`);
  return found!;
}

export function assertExact(done: Record<string, unknown>, bytes: number, who: string): void {
  assert.deepEqual({ sent: done.sent, received: done.received, mismatchAt: done.mismatchAt }, { sent: bytes, received: bytes, mismatchAt: -1 }, `${who}: ${JSON.stringify(done)}`);
}
