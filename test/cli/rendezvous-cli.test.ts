import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import { formatPublicKeyFile, formatSecretKeyFile, generateKeyPair } from '../../src/rendezvous/keys.ts';
import { dk, eventually, freePort, killAll, type Cli } from '../helpers/cli.ts';
import { http } from '../helpers/net.ts';
import { UdpPeer } from '../helpers/rustdesk.ts';
import { tempDir } from '../helpers/stack.ts';

/**
 * The rendezvous as an operator meets it, through the real `dk`: the Key printed by
 * `dk pubkey --rendezvous` and the start banner, a move from hbbs (its key files and peer table),
 * the API's peer list, delete and block, and the metrics.
 */
const ADMIN = 'admin-token-for-rendezvous-tests-0123';

test('dk pubkey --rendezvous makes hbbs-format key files once and prints the .pub content', async () => {
  const dir = tempDir();
  const a = dk(['pubkey', '--rendezvous', '--data-dir', dir]);
  assert.equal((await a.exited).code, 0, a.err());
  const key = a.out().trim();
  assert.match(key, /^[A-Za-z0-9+=]{43}=$/);
  assert.equal(readFileSync(join(dir, 'id_ed25519.pub'), 'utf8'), key, 'the .pub file holds the Key, no newline');
  assert.equal(Buffer.from(readFileSync(join(dir, 'id_ed25519'), 'utf8'), 'base64').length, 64);
  const b = dk(['pubkey', '--rendezvous', '--data-dir', dir]);
  await b.exited;
  assert.equal(b.out().trim(), key);
});

test('moving from hbbs: import-hbbs takes its keys and peers; the gateway enforces that Key, lists the peers and knows their uuids', async () => {
  const hbbs = tempDir();
  mkdirSync(hbbs, { recursive: true });
  const pair = generateKeyPair();
  writeFileSync(join(hbbs, 'id_ed25519'), formatSecretKeyFile(pair));
  writeFileSync(join(hbbs, 'id_ed25519.pub'), formatPublicKeyFile(pair));
  // hbbs's schema (database.rs), with two peers and one row without a key.
  const db = new DatabaseSync(join(hbbs, 'db_v2.sqlite3'));
  db.exec(`create table peer (guid blob primary key not null, id varchar(100) not null, uuid blob not null, pk blob not null,
    created_at datetime not null default(current_timestamp), user blob, status tinyint, note varchar(300), info text not null)`);
  const ins = db.prepare('insert into peer (guid, id, uuid, pk, info) values (?, ?, ?, ?, ?)');
  ins.run(Buffer.from('g1'), '111222333', Buffer.from('uuid-one'), Buffer.alloc(32, 1), '{"ip":"198.51.100.7"}');
  ins.run(Buffer.from('g2'), '444555666', Buffer.from('uuid-two'), Buffer.alloc(32, 2), '{"ip":"198.51.100.8"}');
  ins.run(Buffer.from('g3'), '777888999', Buffer.alloc(0), Buffer.alloc(0), '{}');
  // hbbs listens dual-stack, so it stores an IPv4 client's address v4-mapped.
  ins.run(Buffer.from('g4'), '555666777', Buffer.from('uuid-four'), Buffer.alloc(32, 4), '{"ip":"::ffff:127.0.0.4"}');
  db.close();

  const dataDir = tempDir();
  const imp = dk(['rendezvous', 'import-hbbs', join(hbbs, 'db_v2.sqlite3'), '--keys-from', hbbs, '--data-dir', dataDir]);
  assert.equal((await imp.exited).code, 0, imp.err());
  assert.match(imp.out(), /imported 3 peers/);
  assert.match(imp.out(), /skipped 1/);
  assert.equal(readFileSync(join(dataDir, 'id_ed25519.pub'), 'utf8'), pair.publicKeyBase64);

  const mgmt = await freePort();
  const procs: Cli[] = [];
  const u = await UdpPeer.open('127.0.0.3');
  try {
    const g = dk(['gateway', '--data-dir', dataDir, '--bind', '127.0.0.1', '--serv-port', String(await freePort()), '--mgmt-port', String(mgmt),
      '--admin-token', ADMIN, '--rendezvous-port', '0']);
    procs.push(g);
    await eventually(() => g.out().includes('Key '), 20_000, () => `the banner; stdout: ${g.out()} stderr: ${g.err()}`);
    assert.ok(g.out().includes(`Key            ${pair.publicKeyBase64}`), g.out());
    const api = `http://127.0.0.1:${mgmt}`;
    const info = await http('GET', `${api}/api/v1/rendezvous`, { token: ADMIN });
    assert.equal(info.status, 200, info.text);
    assert.equal(info.json.key, pair.publicKeyBase64);
    assert.equal(info.json.peers_stored, 3);
    const port = info.json.ports.port as number;

    const list = await http('GET', `${api}/api/v1/rendezvous/peers`, { token: ADMIN });
    assert.deepEqual(list.json.peers.map((p: { id: string; online: boolean }) => [p.id, p.online]), [['111222333', false], ['444555666', false], ['555666777', false]]);
    // The imported uuid holds: the same uuid registers, another is UUID_MISMATCH.
    u.send({ union: { case: 'registerPk', value: { id: '111222333', uuid: Buffer.from('not-the-uuid'), pk: Buffer.alloc(32, 9) } } }, port);
    assert.equal((await u.nextBytes())?.toString('hex'), '8201020802');
    u.send({ union: { case: 'registerPk', value: { id: '111222333', uuid: Buffer.from('uuid-one'), pk: Buffer.alloc(32, 1) } } }, port);
    assert.equal((await u.nextBytes())?.toString('hex'), '820100');
    u.send({ union: { case: 'registerPeer', value: { id: '111222333' } } }, port);
    assert.equal((await u.nextBytes())?.toString('hex'), '3a00');
    const online = await http('GET', `${api}/api/v1/rendezvous/peers?online=1`, { token: ADMIN });
    assert.equal(online.json.peers.length, 1);
    assert.equal(online.json.peers[0].id, '111222333');
    assert.equal(online.json.peers[0].ip, '127.0.0.3');
    assert.equal(online.json.peers[0].transport, 'udp');
    // The peer stored with hbbs's v4-mapped address comes back from that address with its uuid
    // and a new key (reinstalled): the same address, so OK, as hbbs answers, not UUID_MISMATCH
    // (which would make the client take a new ID).
    const u4 = await UdpPeer.open('127.0.0.4');
    u4.send({ union: { case: 'registerPk', value: { id: '555666777', uuid: Buffer.from('uuid-four'), pk: Buffer.alloc(32, 44) } } }, port);
    assert.equal((await u4.nextBytes())?.toString('hex'), '820100');
    u4.close();

    const metrics = await http('GET', `${api}/metrics`);
    assert.match(metrics.text, /dk_rendezvous_registrations_total\{kind="pk",transport="udp",result="uuid_mismatch"\} 1/);
    assert.match(metrics.text, /dk_rendezvous_registrations_total\{kind="peer",transport="udp",result="ok"\} 1/);

    assert.equal((await http('DELETE', `${api}/api/v1/rendezvous/peers/444555666`, { token: ADMIN })).status, 200);
    assert.equal((await http('DELETE', `${api}/api/v1/rendezvous/peers/444555666`, { token: ADMIN })).status, 404);
    assert.equal((await http('POST', `${api}/api/v1/rendezvous/blocked`, { token: ADMIN, body: { ip: '127.0.0.3' } })).status, 201);
    assert.equal((await http('POST', `${api}/api/v1/rendezvous/blocked`, { token: ADMIN, body: { ip: 'nope' } })).status, 400);
    u.send({ union: { case: 'registerPeer', value: { id: '111222333' } } }, port);
    assert.equal(await u.nextBytes(500), null, 'a blocked address gets no answer');
    const audit = await http('GET', `${api}/api/v1/audit`, { token: ADMIN });
    assert.ok(audit.json.events.some((e: { event: string }) => e.event === 'rdv_ip_blocked'), audit.text);
    g.kill('SIGTERM');
    assert.equal((await g.exited).code, 0);
  } finally {
    u.close();
    await killAll(procs);
  }
});

test('a rendezvous port in use is a one-line configuration error (exit 2)', async () => {
  const busy = await UdpPeer.open('127.0.0.1');
  const { port } = busy.address;
  try {
    const g = dk(['gateway', '--data-dir', tempDir(), '--bind', '127.0.0.1', '--serv-port', String(await freePort()), '--mgmt-port', String(await freePort()),
      '--admin-token', ADMIN, '--rendezvous-port', String(port)]);
    const r = await g.exited;
    // UDP N is taken; TCP N may or may not be free: either way one line naming rendezvous.port.
    assert.equal(r.code, 2, g.err());
    const errors = g.err().split('\n').filter((l) => l.startsWith('dk: '));
    assert.equal(errors.length, 1, g.err());
    assert.match(errors[0]!, /rendezvous\.(port|nat_port|ws_port)/);
  } finally {
    busy.close();
  }
});
