import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Prng } from '../helpers/prng.ts';
import fc from 'fast-check';
import { generateKeyPair } from '../../src/link/crypto.ts';
import { LinkError } from '../../src/link/errors.ts';
import { clientNew, NEW_SIZE, serverNew, trafficKeys } from '../../src/link/handshake.ts';
import { MAX_DATA, Rec, RecordOpener, RecordSealer, type Record } from '../../src/link/record.ts';
import { ReplayBuffer } from '../../src/link/replay-buffer.ts';

test('property: the replay buffer holds exactly the unacknowledged bytes and reads them back', () => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.uint8Array({ maxLength: 5000 }), fc.nat(6000)), { maxLength: 30 }), (ops) => {
    const rb = new ReplayBuffer();
    const all: number[] = [];
    let acked = 0;
    for (const [data, ackStep] of ops) {
      rb.append(Buffer.from(data));
      all.push(...data);
      acked = Math.min(all.length, acked + ackStep);
      assert.equal(rb.ack(acked), true);
      assert.equal(rb.size, all.length - acked);
      assert.deepEqual([...Buffer.concat(rb.pieces(acked, rb.size))], all.slice(acked));
    }
    assert.equal(rb.ack(all.length + 1), false, 'cannot acknowledge what was never written');
  }), { numRuns: 200 });
});

test('property: reads at any offsets, as a sender walking forward and going back after a reconnect, match the bytes written', () => {
  // ops: append n bytes | ack up to a fraction of what is held | read from a fraction of the held range
  const op = fc.oneof(
    fc.record({ kind: fc.constant('append' as const), n: fc.integer({ min: 0, max: 300 }) }),
    fc.record({ kind: fc.constant('ack' as const), f: fc.double({ min: 0, max: 1, noNaN: true }) }),
    fc.record({ kind: fc.constant('read' as const), f: fc.double({ min: 0, max: 1, noNaN: true }), max: fc.integer({ min: 0, max: 2000 }) }),
  );
  fc.assert(fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
    const rb = new ReplayBuffer();
    const all: number[] = [];
    let next = 0;
    for (const o of ops) {
      if (o.kind === 'append') {
        const b = Buffer.from(Array.from({ length: o.n }, (_, i) => (all.length + i) & 0xff));
        rb.append(b);
        all.push(...b);
      } else if (o.kind === 'ack') {
        rb.ack(rb.acked + Math.floor(o.f * rb.size));
      } else {
        const from = rb.acked + Math.floor(o.f * rb.size);
        assert.deepEqual([...Buffer.concat(rb.pieces(from, o.max))], all.slice(from, from + o.max));
        next = Math.min(rb.end, from + o.max);
        // and straight on from where that read ended, as the pump does
        assert.deepEqual([...Buffer.concat(rb.pieces(next, 100))], all.slice(next, next + 100));
      }
    }
  }), { numRuns: 300 });
});

test('replay buffer: a forward read after acknowledgements freed earlier chunks starts at the right byte', () => {
  const rb = new ReplayBuffer();
  const all = Buffer.from(Array.from({ length: 1000 }, (_, i) => i & 0xff));
  for (let off = 0; off < 1000; off += 10) rb.append(all.subarray(off, off + 10)); // 100 chunks
  assert.deepEqual(Buffer.concat(rb.pieces(500, 20)), all.subarray(500, 520));
  rb.ack(300); // frees 30 chunks before the read position
  assert.deepEqual(Buffer.concat(rb.pieces(520, 25)), all.subarray(520, 545));
  rb.ack(535); // frees up to inside the chunk that was read last
  assert.deepEqual(Buffer.concat(rb.pieces(545, 100)), all.subarray(545, 645));
  assert.deepEqual(Buffer.concat(rb.pieces(535, 10)), all.subarray(535, 545), 'and back to the first unacknowledged byte');
});

test('property: records open in order under any chunking; a reordered record fails', () => {
  const key = randomBytes(32);
  fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 3000 }), { minLength: 1, maxLength: 10 }), fc.array(fc.nat(), { maxLength: 20 }), (datas, cuts) => {
    const sealer = new RecordSealer(key);
    let off = 0;
    const wire = Buffer.concat(datas.map((d) => { const r = Buffer.concat(sealer.dataPieces(off, [Buffer.from(d)])); off += d.length; return r; }));
    const opener = new RecordOpener(key);
    const got: Record[] = [];
    const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
    let prev = 0;
    for (const p of [...points, wire.length]) { opener.push(wire.subarray(prev, p), (r) => got.push(r)); prev = p; }
    assert.deepEqual(got.map((r) => (r.type === Rec.DATA ? [...Buffer.concat(r.data)] : null)), datas.map((d) => [...d]));
  }), { numRuns: 200 });
  const s = new RecordSealer(key);
  const a = s.control(Rec.ACK, 1);
  const b = s.control(Rec.ACK, 2);
  assert.throws(() => new RecordOpener(key).push(Buffer.concat([b, a]), () => undefined), LinkError);
});

test('a DATA record sealed from several pieces opens to their bytes; more than MAX_DATA is refused', () => {
  const key = randomBytes(32);
  const sealer = new RecordSealer(key);
  const opener = new RecordOpener(key);
  const pieces = [randomBytes(6), randomBytes(8185), Buffer.alloc(0), randomBytes(6), randomBytes(3000)];
  const got: Record[] = [];
  opener.push(Buffer.concat([...sealer.dataPieces(77, pieces), sealer.control(Rec.ACK, 5), ...sealer.dataPieces(100, [randomBytes(1)])]), (r) => got.push(r));
  assert.equal(got.length, 3);
  const first = got[0]!;
  assert.ok(first.type === Rec.DATA);
  assert.equal(first.offset, 77);
  assert.deepEqual(Buffer.concat(first.data), Buffer.concat(pieces));
  assert.deepEqual(got[1], { type: Rec.ACK, recv: 5 });
  assert.throws(() => sealer.dataPieces(0, [Buffer.alloc(MAX_DATA), Buffer.alloc(1)]), RangeError);
});

const rng = Prng.fromEnv();

function flipOne(b: Buffer): Buffer {
  const m = Buffer.from(b);
  const at = rng.int(m.length);
  m[at] = m[at]! ^ (1 << rng.int(8));
  return m;
}

test(`fuzz (2 s, seed ${rng.seed}): the record opener and the handshake parser fail only with typed errors`, () => {
  // Every input and flip comes from the seed (DK_FUZZ_SEED=N replays them); only the ephemeral
  // key inside each valid handshake message is fresh, as clientNew makes it.
  console.log(`# link fuzz seed ${rng.seed} (replay: DK_FUZZ_SEED=${rng.seed})`);
  const key = rng.bytes(32);
  const server = generateKeyPair();
  const deadline = Date.now() + 2000;
  let runs = 0;
  while (Date.now() < deadline) {
    runs++;
    const sealer = new RecordSealer(key);
    const valid = Buffer.concat([...sealer.dataPieces(0, [rng.bytes(rng.int(100))]), sealer.control(Rec.ACK, rng.int(1000))]);
    const input = rng.int(2) ? rng.bytes(rng.int(1, 300)) : flipOne(valid);
    try {
      new RecordOpener(key).push(input, () => undefined);
    } catch (e) {
      assert.ok(e instanceof LinkError, `seed ${rng.seed}, input ${runs}: ${String(e)}`);
    }
    const hello = rng.int(2) ? rng.bytes(NEW_SIZE) : flipOne(clientNew(server.publicRaw, 1).message);
    try {
      serverNew(server, hello);
    } catch (e) {
      assert.ok(e instanceof LinkError, `seed ${rng.seed}, input ${runs}: ${String(e)}`);
    }
  }
  console.log(`# link fuzz: ${runs} inputs`);
});

test('handshake: both sides derive the same secrets; keys differ per epoch and per direction', () => {
  const server = generateKeyPair();
  const c = clientNew(server.publicRaw, 7);
  const s = serverNew(server, c.message);
  const cs = c.finish(s.reply);
  assert.equal(s.purpose, 7);
  assert.ok(cs.master.equals(s.secrets.master));
  assert.ok(cs.sessionId.equals(s.secrets.sessionId));
  const k0 = trafficKeys(cs.master, cs.salt, 0);
  const k1 = trafficKeys(cs.master, Buffer.alloc(32, 1), 1);
  assert.ok(!k0.c2s.equals(k0.s2c));
  assert.ok(!k0.c2s.equals(k1.c2s));
  // Another session with the same server key shares nothing (ephemeral keys: forward secrecy).
  const c2 = clientNew(server.publicRaw, 7);
  assert.ok(!c2.finish(serverNew(server, c2.message).reply).master.equals(cs.master));
});

test('a record of MAX_DATA (SPEC §5: a 64 KiB read with its frame headers) opens, whole or split across reads; one byte more is refused at its length', () => {
  const key = randomBytes(32);
  const data = randomBytes(MAX_DATA);
  const wire = Buffer.concat(new RecordSealer(key).dataPieces(0, [data]));
  for (const cut of [wire.length, 3, 70_000 % wire.length]) {
    const got: Record[] = [];
    const opener = new RecordOpener(key);
    opener.push(wire.subarray(0, cut), (r) => got.push(r));
    if (cut < wire.length) opener.push(wire.subarray(cut), (r) => got.push(r));
    assert.equal(got.length, 1);
    assert.deepEqual(Buffer.concat((got[0] as { data: Buffer[] }).data), data);
  }
  const tooLong = Buffer.from(wire);
  tooLong.writeUInt32BE(wire.length - 4 + 1, 0);
  assert.throws(() => new RecordOpener(key).push(tooLong.subarray(0, 4), () => undefined), { code: 'DK_LINK_PROTOCOL' });
});
