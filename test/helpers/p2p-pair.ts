import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createLab, labUnavailable, LAB_ADDR, type Lab, type LabProcess, type NatMode } from './natlab.ts';

const FIXTURES = fileURLToPath(new URL('../p2p/fixtures/', import.meta.url));

/** Starts the coordinator on the lab's public address; returns its process and port. */
export async function startCoordinator(lab: Lab): Promise<{ proc: LabProcess; port: number }> {
  const proc = lab.run('pub', `${FIXTURES}coordinator.ts`, [LAB_ADDR.rendezvous, '0']);
  const listening = await proc.next('listening');
  return { proc, port: Number(listening.port) };
}

export interface PairResult {
  a: { go: Record<string, any>; punch: Record<string, any>; transfer?: Record<string, any> | undefined; exit: number | null };
  b: { go: Record<string, any>; punch: Record<string, any>; transfer?: Record<string, any> | undefined; exit: number | null };
}

/**
 * One punch between the client (LAN A) and the agent (LAN B) through the coordinator: both peers
 * (test/p2p/fixtures/peer.ts) start together; when direct, each sends `bytes` and checks the other's.
 */
export async function punchPair(lab: Lab, coordPort: number, opts: { session: string; bytes?: number; deadlineMs?: number; attempts?: number }): Promise<PairResult> {
  const args = [
    '--coord', `${LAB_ADDR.rendezvous}:${coordPort}`, '--session', opts.session, '--bytes', String(opts.bytes ?? 0),
    '--deadline', String(opts.deadlineMs ?? 3_000), '--attempts', String(opts.attempts ?? 3),
  ];
  const procs = { a: lab.run('a', `${FIXTURES}peer.ts`, args), b: lab.run('b', `${FIXTURES}peer.ts`, args) };
  const side = async (p: LabProcess): Promise<PairResult['a']> => {
    const go = await p.next('go');
    const punch = await p.next('punch');
    const transfer = punch.ok === true && (opts.bytes ?? 0) > 0 ? await p.next('transfer', 60_000) : undefined;
    return { go, punch, transfer, exit: await p.exited };
  };
  try {
    const [a, b] = await Promise.all([side(procs.a), side(procs.b)]);
    return { a, b };
  } finally {
    procs.a.kill();
    procs.b.kill();
  }
}

const MiB = 1024 * 1024;

/** Builds a lab with these NATs; direct TCP must form and carry 16 MiB each way byte-exact. Prints the time to connected. */
export async function directBothWays(t: TestContext, natA: NatMode, natB: NatMode): Promise<void> {
  const why = await labUnavailable();
  if (why !== undefined) { t.skip(why); return; }
  const lab = await createLab({ natA, natB });
  try {
    const coord = await startCoordinator(lab);
    const { a, b } = await punchPair(lab, coord.port, { session: `${natA}-${natB}`, bytes: 16 * MiB });
    t.diagnostic(`A: ${String(a.punch.line)}; ${a.punch.sinceStartMs} ms from start to connected`);
    t.diagnostic(`B: ${String(b.punch.line)}; ${b.punch.sinceStartMs} ms from start to connected`);
    // The coordinator saw each side through its NAT: the router's public address.
    assert.equal(a.go.observed.host, LAB_ADDR.wanA);
    assert.equal(b.go.observed.host, LAB_ADDR.wanB);
    assert.equal(a.punch.ok, true, String(a.punch.line));
    assert.equal(b.punch.ok, true, String(b.punch.line));
    assert.match(String(a.punch.line), /^path=direct via="public 198\.18\.2\.2:\d+"/);
    assert.match(String(b.punch.line), /^path=direct via="public 198\.18\.1\.2:\d+"/);
    for (const side of [a, b]) {
      assert.deepEqual({ sent: side.transfer?.sent, received: side.transfer?.received, mismatchAt: side.transfer?.mismatchAt }, { sent: 16 * MiB, received: 16 * MiB, mismatchAt: -1 });
      assert.equal(side.exit, 0);
    }
    t.diagnostic(`16 MiB each way in ${a.transfer?.ms} ms`);
  } finally {
    await lab.close();
  }
}
