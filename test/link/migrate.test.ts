import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { test } from 'node:test';
import type { Socket } from 'node:net';
import { migrateLink } from '../../src/link/index.ts';
import { Pattern } from '../helpers/fault-proxy.ts';
import { rig } from './helpers.ts';
import { dialTo, receivePattern, sendPattern, until } from './migrate-helpers.ts';

const MIB = Number(process.env.DK_MIGRATE_MIB ?? 64);
const SIZE = MIB * 2 ** 20;
const MOVES = 10;

test(`migration: ${MIB} MiB each way at once while the stream moves ${MOVES} times between a proxied and a direct transport, bytes exact`, async (t) => {
  const seed = Number(process.env.DK_SEED ?? randomInt(2 ** 31));
  const opts = { window: 1024 * 1024 };
  // The proxy injects no faults here: it is just another path to the server.
  const r = await rig({ proxySeed: seed, server: opts });
  t.after(() => r.close());
  const { c: client, s: server } = await r.pair(opts);
  const events = { clientDetached: 0, serverDetached: 0, clientResumeFailed: 0, serverResumeFailed: 0, serverAttached: 0 };
  client.on('detached', () => events.clientDetached++);
  server.on('detached', () => events.serverDetached++);
  client.on('resumeFailed', () => events.clientResumeFailed++);
  server.on('resumeFailed', () => events.serverResumeFailed++);
  server.on('attached', () => events.serverAttached++);

  const up = new Pattern(seed);
  const down = new Pattern(seed + 1);
  let atClient = 0;
  const transfer = Promise.all([
    sendPattern(client, up, SIZE), sendPattern(server, down, SIZE),
    receivePattern(server, up), receivePattern(client, down, (n) => { atClient = n; }),
  ]);
  // Each move waits for its share of the transfer, so all of them happen while data flows both ways.
  for (let i = 0; i < MOVES; i++) {
    await until(() => atClient >= ((i + 1) / (MOVES + 1)) * SIZE, `move ${i + 1}'s share of the transfer`);
    const direct = i % 2 === 0;
    const sock: Socket = dialTo(direct ? r.port : r.proxy!.port);
    const before = server.remotePort;
    await migrateLink(client, sock);
    assert.equal(client.stats.attaches, i + 2, `move ${i + 1}: the client is attached once more`);
    // The server's stream now runs on the new transport: its peer is our socket (direct), or the
    // proxy's new outbound socket (proxied), not the transport it replaced.
    await until(() => server.stats.attaches === i + 2, `move ${i + 1} at the server`);
    if (direct) assert.equal(server.remotePort, sock.localPort, `move ${i + 1}: the server is attached to the new socket`);
    else assert.notEqual(server.remotePort, before, `move ${i + 1}: the server left the old transport`);
  }
  const [sentUp, sentDown, gotAtServer, gotAtClient] = await transfer;
  console.log(`# seed ${seed}: ${MIB} MiB each way, ${MOVES} moves; duplicates dropped by position: ${client.stats.duplicatesIn} at the client, `
    + `${server.stats.duplicatesIn} at the server; retransmitted ${(client.stats.retransmitted / 2 ** 20).toFixed(2)} MiB up, `
    + `${(server.stats.retransmitted / 2 ** 20).toFixed(2)} MiB down`);
  const msg = `seed ${seed} (rerun with DK_SEED=${seed})`;
  assert.equal(gotAtServer.bad, -1, `${msg}: first wrong byte at the server at ${gotAtServer.bad}`);
  assert.equal(gotAtClient.bad, -1, `${msg}: first wrong byte at the client at ${gotAtClient.bad}`);
  assert.equal(gotAtServer.bytes, SIZE, msg);
  assert.equal(gotAtClient.bytes, SIZE, msg);
  assert.equal(gotAtServer.hash, sentUp, msg);
  assert.equal(gotAtClient.hash, sentDown, msg);
  assert.equal(client.stats.attaches, MOVES + 1, msg);
  assert.equal(events.serverAttached, MOVES, `${msg}: each move attached the server once`);
  assert.deepEqual({ ...events, serverAttached: 0 }, { clientDetached: 0, serverDetached: 0, clientResumeFailed: 0, serverResumeFailed: 0, serverAttached: 0 }, msg);
});
