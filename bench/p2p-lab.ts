/**
 * Direct TCP through the NAT lab (docs/p2p.md §7), as root:
 *   node bench/p2p-lab.ts [--tries N]
 * For each pair of router modes, N punches between a client in LAN A and an agent in LAN B (each a
 * new pair of processes, test/p2p/fixtures/peer.ts) through the lab's coordinator. Prints per pair:
 * how many went direct, the punch time (first dial to the selected connection; median and max),
 * the time from a side's start to connected (median), how many won on a redial after RST, and the
 * reason the client's public candidate failed when it did. It asserts nothing.
 */
import { createLab, labUnavailable, type NatMode } from '../test/helpers/natlab.ts';
import { punchPair, startCoordinator } from '../test/helpers/p2p-pair.ts';

const i = process.argv.indexOf('--tries');
const tries = i > 0 ? Number(process.argv[i + 1]) : 20;
const why = await labUnavailable();
if (why !== undefined) {
  console.error(`p2p-lab: ${why}`);
  process.exit(1);
}

const pairs: [NatMode, NatMode, number][] = [
  ['cone', 'cone', tries], ['home', 'home', tries], ['symmetric', 'cone', Math.min(tries, 5)], ['cone', 'symmetric', Math.min(tries, 5)],
  ['symmetric', 'symmetric', Math.min(tries, 3)], ['rst', 'cone', tries], ['rst', 'home', tries], ['rst', 'rst', tries],
];
const median = (xs: number[]): number | undefined => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

for (const [natA, natB, n] of pairs) {
  const lab = await createLab({ natA, natB });
  try {
    const coord = await startCoordinator(lab);
    let direct = 0;
    let redialled = 0;
    const punchMs: number[] = [];
    const startMs: number[] = [];
    const failures = new Map<string, number>();
    for (let k = 0; k < n; k++) {
      const { a, b } = await punchPair(lab, coord.port, { session: `bench-${k}`, deadlineMs: 3_000 });
      if (a.punch.ok === true && b.punch.ok === true) {
        direct++;
        punchMs.push(Math.max(a.punch.ms, b.punch.ms));
        startMs.push(Math.max(a.punch.sinceStartMs, b.punch.sinceStartMs));
        if ([...a.punch.outcomes, ...b.punch.outcomes].some((o: any) => o.reason === 'won' && o.attempts > 1)) redialled++;
      } else {
        const reason = String(a.punch.outcomes.find((o: any) => o.candidate.kind === 'public')?.reason ?? 'none');
        failures.set(reason, (failures.get(reason) ?? 0) + 1);
      }
    }
    const ms = punchMs.length > 0 ? `punch ms median ${median(punchMs)} max ${Math.max(...punchMs)}, start→connected median ${median(startMs)} ms` : 'no punch ms';
    const failed = failures.size > 0 ? `; failed: ${[...failures].map(([r, c]) => `${r} ×${c}`).join(', ')}` : '';
    console.log(`${natA}/${natB}: direct ${direct}/${n}; ${ms}; won on a redial ${redialled}${failed}`);
  } finally {
    await lab.close();
  }
}
