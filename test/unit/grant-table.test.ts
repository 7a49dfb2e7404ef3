import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { GrantTable } from '../../src/gateway/grants.ts';

const req = (clientIp: string, port = 22, host = '127.0.0.1') => ({ userId: 1, userName: 'u', clientIp, backend: 'home', host, port });

test('port choice: reuse a port where this IP has no grant, else a new one', () => {
  const t = new GrantTable(600_000, 3_600_000, () => 0);
  assert.equal(t.reusablePort('1.1.1.1', []), null, 'no open port: open a new one');
  t.create(req('1.1.1.1'), 40001);
  assert.equal(t.reusablePort('1.1.1.1', [40001]), null, 'same IP already holds 40001');
  assert.equal(t.reusablePort('2.2.2.2', [40001]), 40001, 'another IP reuses it');
  t.create(req('1.1.1.1', 3389), 40002);
  assert.equal(t.reusablePort('2.2.2.2', [40002, 40001]), 40001, 'lowest first');
});

test('lookup matches the source IP and port only', () => {
  const t = new GrantTable(600_000, 3_600_000, () => 0);
  const g = t.create(req('1.1.1.1'), 40001);
  assert.equal(t.lookup(40001, '1.1.1.1')?.id, g.id);
  assert.equal(t.lookup(40001, '1.1.1.2'), undefined);
  assert.equal(t.lookup(40002, '1.1.1.1'), undefined);
});

test('idle deadline, sessions holding it open, and the hard lifetime', () => {
  let now = 0;
  const t = new GrantTable(1000, 5000, () => now);
  const g = t.create(req('1.1.1.1'), 40001);
  assert.equal(g.startBefore, 1000);
  assert.equal(g.expiresAt, 5000);
  t.sessionStarted(g.id);
  now = 3000;
  assert.deepEqual(t.sweep(), [], 'an active session keeps it');
  t.sessionEnded(g.id);
  assert.equal(t.get(g.id)?.startBefore, 4000, 'idle clock restarts when the last session ends');
  now = 3999;
  assert.deepEqual(t.sweep(), []);
  now = 4000;
  assert.deepEqual(t.sweep().map((x) => x.why), ['idle']);
  const h = t.create(req('1.1.1.1'), 40001);
  t.sessionStarted(h.id);
  now = 4000 + 5000;
  assert.deepEqual(t.sweep().map((x) => x.why), ['expired'], 'lifetime ends it even with a live session');
});

test('asking again for the same target returns the same grant with a refreshed idle deadline', () => {
  let now = 0;
  const t = new GrantTable(1000, 5000, () => now);
  const g = t.create(req('1.1.1.1'), 40001);
  now = 800;
  assert.equal(t.existing(req('1.1.1.1'))?.id, g.id);
  assert.equal(g.startBefore, 1800);
  now = 4500;
  t.existing(req('1.1.1.1'));
  assert.equal(g.startBefore, 5000, 'never beyond expires_at');
  assert.equal(t.existing(req('1.1.1.1', 23)), undefined);
});

test('property: lookup agrees with a scan of all grants through creates, restores, removals, sweeps and time', () => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.nat(5), fc.nat(3), fc.nat(3), fc.nat(3000)), { maxLength: 60 }), (ops) => {
    let now = 0;
    const t = new GrantTable(1000, 5000, () => now);
    const other = new GrantTable(1000, 5000, () => now);
    for (const [op, ipN, portN, n] of ops) {
      const ip = `10.0.0.${ipN}`;
      const port = 40000 + portN;
      if (op === 0 && t.all().every((g) => !(g.clientIp === ip && g.accessPort === port))) t.create(req(ip, 22 + (n % 3)), port);
      else if (op === 1) { const gs = t.all(); if (gs.length > 0) t.remove(gs[n % gs.length]!.id); }
      else if (op === 2) t.sweep();
      else if (op === 3) now += n;
      else if (op === 4) { const g = other.create(req(ip), port); if (t.all().every((x) => !(x.clientIp === ip && x.accessPort === port))) t.restore({ ...g }); }
      for (let i = 0; i < 4; i++) {
        for (let p = 0; p < 4; p++) {
          const scan = t.all().find((g) => g.accessPort === 40000 + p && g.clientIp === `10.0.0.${i}` && now < g.expiresAt);
          assert.equal(t.lookup(40000 + p, `10.0.0.${i}`), scan);
        }
      }
    }
  }), { numRuns: 300 });
});

test('refreshActive: a grant with live sessions keeps moving its idle deadline, handed out for saving every idle/2', () => {
  let now = 0;
  const t = new GrantTable(1000, 60_000, () => now);
  const g = t.create({ userId: 1, userName: 'u', clientIp: '10.0.0.1', backend: 'b', host: '127.0.0.1', port: 22 }, 40001);
  const idle = t.create({ userId: 1, userName: 'u', clientIp: '10.0.0.2', backend: 'b', host: '127.0.0.1', port: 22 }, 40001);
  t.sessionStarted(g.id);
  now = 400;
  assert.deepEqual(t.refreshActive(), [], 'moved by 400 ms < idle/2: nothing to save yet');
  assert.equal(g.startBefore, 1400);
  now = 600;
  assert.deepEqual(t.refreshActive().map((x) => x.id), [g.id]);
  assert.equal(g.startBefore, 1600);
  assert.equal(idle.startBefore, 1000, 'a grant without sessions is not touched');
  now = 59_800;
  t.refreshActive();
  assert.equal(g.startBefore, 60_000, 'never past the hard lifetime');
});
