/**
 * Which path carried a transfer, measured at the NAT lab's public segment (natlab.ts): counting
 * rules (no verdict) in `pub`'s FORWARD chain for what goes between the two NATs' public
 * addresses — the direct path — apart from what goes to the gateway itself (the relay, the
 * gateway's path). Used by the end-to-end lab tests and the issue-20 benchmark.
 */
import { LAB_ADDR, type Lab } from './natlab.ts';

const PAIRS = [[LAB_ADDR.wanA, LAB_ADDR.wanB], [LAB_ADDR.wanB, LAB_ADDR.wanA]] as const;

/** Adds the counting rules (once per lab). */
export async function countBetweenNats(lab: Lab): Promise<void> {
  for (const [s, d] of PAIRS) await lab.exec('pub', 'iptables', ['-A', 'FORWARD', '-s', s, '-d', d, '-p', 'tcp']);
}

/** Bytes forwarded between the two NATs so far, both ways. */
export async function bytesBetweenNats(lab: Lab): Promise<number> {
  const text = await lab.exec('pub', 'iptables', ['-L', 'FORWARD', '-v', '-x', '-n']);
  let n = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    // pkts bytes target prot opt in out source destination: the counting rules have no target
    // (iptables prints their protocol as "tcp" or "6").
    if (f.length >= 8 && (f[2] === 'tcp' || f[2] === '6') && (f[6] === LAB_ADDR.wanA || f[6] === LAB_ADDR.wanB)) n += Number(f[1]);
  }
  return n;
}

/** Drops (on) or lets through again (off) everything between the two NATs: the direct path blackholed. */
export async function blackholeBetweenNats(lab: Lab, on: boolean): Promise<void> {
  for (const [s, d] of PAIRS) await lab.exec('pub', 'iptables', [on ? '-I' : '-D', 'FORWARD', '-s', s, '-d', d, '-j', 'DROP']);
}
