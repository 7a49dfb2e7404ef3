import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { cleanStaleLabs, createLab, labUnavailable } from '../helpers/natlab.ts';

const namespaces = (): string[] => { try { return readdirSync('/run/netns'); } catch { return []; } };

test('NAT lab: close() deletes every namespace it made; labs of dead processes are cleaned, live ones kept', async (t) => {
  const why = await labUnavailable();
  if (why !== undefined) { t.skip(why); return; }
  // A lab left by a process that is gone (no such pid), and one of this live process.
  const dead = `dklab-${2 ** 22 + 1}-dead${process.pid}-pub`;
  execFileSync('ip', ['netns', 'add', dead]);
  const lab = await createLab({ natA: 'cone', natB: 'cone' });
  try {
    const mine = namespaces().filter((n) => n.startsWith(`${lab.id}-`));
    assert.deepEqual(mine.sort(), ['a', 'b', 'pub', 'ra', 'rb', 't'].map((r) => `${lab.id}-${r}`).sort());
    // A minute from now: the dead process's lab is an orphan, this one is alive and young.
    const removed = await cleanStaleLabs(Date.now() + 60_000);
    assert.ok(removed.includes(dead), `removed ${String(removed)}`);
    assert.ok(!removed.some((n) => n.startsWith(lab.id)));
    assert.ok(!namespaces().includes(dead));
  } finally {
    await lab.close();
    if (namespaces().includes(dead)) execFileSync('ip', ['netns', 'del', dead]);
  }
  assert.deepEqual(namespaces().filter((n) => n.startsWith(`${lab.id}-`)), []);
});
