import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { test } from 'node:test';
import { RESUME_CHALLENGE_SIZE, RESUME_PROOF_SIZE, RESUME_SIZE } from '../../src/link/handshake.ts';
import { migrateLink, ResumeError } from '../../src/link/index.ts';
import { Pattern } from '../helpers/fault-proxy.ts';
import { rig } from './helpers.ts';
import { dialTo, gate, receivePattern, sendPattern, until } from './migrate-helpers.ts';

const SIZE = 16 * 2 ** 20;
const WINDOW = 1024 * 1024;
/**
 * The client does not read until the cut, so its paused old transport notices the reset only when
 * a write fails: once its window is full, that is the next PING's (default every 5 s).
 */
const OPTS = { window: WINDOW, pingMs: 100 };

/**
 * The client starts on a fault proxy (the old transport) and moves to a gate in front of the
 * server (the new one), which holds back what the server answers until release(). The client
 * does not read until the cut, so the server's window is full of unacknowledged bytes when the
 * old transport dies.
 */
async function setup(t: { after(fn: () => void): void }) {
  const seed = Number(process.env.DK_SEED ?? randomInt(2 ** 31));
  const r = await rig({ proxySeed: seed, server: OPTS });
  const g = await gate(r.port);
  t.after(() => { r.close(); g.close(); });
  const { c, s } = await r.pair({ ...OPTS, resumeForMs: 30_000 });
  const counts = { clientDetached: 0, clientResumeFailed: 0 };
  c.on('detached', () => counts.clientDetached++);
  c.on('resumeFailed', () => counts.clientResumeFailed++);
  c.pause();
  const up = new Pattern(seed);
  const down = new Pattern(seed + 1);
  const transfer = Promise.all([sendPattern(c, up, SIZE), sendPattern(s, down, SIZE), receivePattern(s, up), receivePattern(c, down)]);
  c.pause(); // receivePattern's 'data' listener set it flowing
  await until(() => s.unacked >= WINDOW / 2, 'the server has bytes in flight to the client');
  const check = async (): Promise<void> => {
    const [sentUp, sentDown, atServer, atClient] = await transfer;
    const msg = `seed ${seed} (rerun with DK_SEED=${seed})`;
    assert.equal(atServer.bad, -1, `${msg}: first wrong byte at the server at ${atServer.bad}`);
    assert.equal(atClient.bad, -1, `${msg}: first wrong byte at the client at ${atClient.bad}`);
    assert.equal(atServer.bytes, SIZE, msg);
    assert.equal(atClient.bytes, SIZE, msg);
    assert.equal(atServer.hash, sentUp, msg);
    assert.equal(atClient.hash, sentDown, msg);
  };
  return { r, g, c, s, counts, check };
}

for (const when of ['before the proof', 'after the server accepted'] as const) {
  test(`the old transport cut during a migration (${when}): the move completes, the loop stays out, no byte lost`, async (t) => {
    const { r, g, c, s, counts, check } = await setup(t);
    const move = migrateLink(c, dialTo(g.port));
    if (when === 'before the proof') {
      await until(() => g.up() >= RESUME_SIZE, 'the resume hello through the gate');
    } else {
      g.release(RESUME_CHALLENGE_SIZE); // the challenge reaches the client, and its proof the server; the answer is held
      await until(() => g.up() >= RESUME_SIZE + RESUME_PROOF_SIZE && s.stats.attaches === 2, 'the server accepting the move');
    }
    assert.ok(s.unacked > 0, 'bytes are in flight when the old transport dies');
    r.proxy!.inject('reset');
    await until(() => counts.clientDetached === 1, 'the client losing the old transport');
    g.release();
    await move;
    assert.ok(c.attached);
    c.resume();
    await check();
    // One move, and no resume by the loop: it never dialled the proxy again.
    assert.equal(c.stats.attaches, 2);
    assert.equal(s.stats.attaches, 2);
    assert.equal(r.proxy!.connections, 1);
    assert.equal(counts.clientResumeFailed, 0);
  });
}

test('the old transport cut during a migration that then fails: the loop takes over, no byte lost', async (t) => {
  const { r, g, c, s, counts, check } = await setup(t);
  const move = migrateLink(c, dialTo(g.port));
  g.release(RESUME_CHALLENGE_SIZE);
  // The server accepts the move (the old transport is replaced there) but the client never
  // hears of it: the new transport dies and the old one is cut.
  await until(() => g.up() >= RESUME_SIZE + RESUME_PROOF_SIZE && s.stats.attaches === 2, 'the server accepting the move');
  r.proxy!.inject('reset');
  await until(() => counts.clientDetached === 1, 'the client losing the old transport');
  assert.equal(r.proxy!.connections, 1, 'the loop waits while the migration runs');
  g.cut();
  await assert.rejects(move, (e) => e instanceof ResumeError && e.reason === 'transport');
  await until(() => c.attached, 'the resume loop attaching the client again');
  c.resume();
  await check();
  assert.equal(r.proxy!.connections, 2, 'the loop resumed through the proxy once');
  assert.equal(c.stats.attaches, 2, 'first transport, then the loop\'s');
  assert.equal(s.stats.attaches, 3, 'first transport, the failed move, the loop\'s');
});
