import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Decoder, decodeExpose, encodeBigDat, decodeHello, decodeScanReply, encodeFrame, FrameType, ProtocolError, type Frame,
} from '../../src/protocol/index.ts';
import { Prng } from '../helpers/prng.ts';

const SECONDS = Number(process.env.DK_FUZZ_SECONDS ?? 3);
const rng = Prng.fromEnv();
const randomInt = (a: number, b?: number): number => rng.int(a, b);
const randomBytes = (n: number): Buffer => rng.bytes(n);

function validFrames(big: boolean): Buffer {
  const frames: Buffer[] = [];
  if (big && randomInt(2) === 0) frames.push(encodeBigDat(4, randomBytes(randomInt(1, 70_000) % 65536 + 1)));
  const seed: Frame[] = [];
  for (let i = randomInt(1, 8); i > 0; i--) {
    const k = randomInt(4);
    if (k === 0) seed.push({ type: FrameType.CLS, session: randomInt(2 ** 32) });
    else if (k === 1) seed.push({ type: FrameType.OPN, session: 1, port: randomInt(65536), address: randomBytes(randomInt(2) ? 4 : 16) });
    else if (k === 2) seed.push({ type: FrameType.DAT, session: 2, data: randomBytes(randomInt(9000) % 8186) });
    else seed.push({ type: FrameType.CMD, id: 3, command: randomInt(256), params: randomBytes(randomInt(64)) });
  }
  return Buffer.concat([...frames, ...seed.map(encodeFrame)]);
}

function mutate(b: Buffer): Buffer {
  const m = Buffer.from(b);
  for (let i = randomInt(1, 6); i > 0 && m.length > 0; i--) {
    const op = randomInt(3);
    const at = randomInt(m.length);
    if (op === 0) m[at] = randomInt(256);
    else if (op === 1) m[at] = m[at]! ^ (1 << randomInt(8));
    else return Buffer.concat([m.subarray(0, at), randomBytes(randomInt(16)), m.subarray(at)]);
  }
  return m;
}

test(`fuzz (${SECONDS}s, seed ${rng.seed}): random and mutated input gives frames or a typed error, never a crash or a hang`, () => {
  // The seed fixes every input and every split: DK_FUZZ_SEED=N replays a run (as far as it got).
  console.log(`# fuzz seed ${rng.seed} (replay: DK_FUZZ_SEED=${rng.seed} DK_FUZZ_SECONDS=${SECONDS})`);
  const deadline = Date.now() + SECONDS * 1000;
  let runs = 0;
  let errors = 0;
  let frames = 0;
  while (Date.now() < deadline) {
    runs++;
    const big = randomInt(2) === 1;
    const input = randomInt(3) === 0 ? randomBytes(randomInt(1, 20000)) : mutate(validFrames(big));
    const d = new Decoder();
    d.allowBig = big; // BIG frames negotiated on half the inputs
    let off = 0;
    try {
      while (off < input.length) {
        const n = randomInt(1, 4096);
        d.push(input.subarray(off, off + n), (f) => {
          frames++;
          // Every parameter parser of untrusted CMD payloads must also fail only with typed errors.
          if (f.type === FrameType.CMD) {
            for (const parse of [decodeHello, decodeScanReply, decodeExpose]) {
              try { parse(f.params); } catch (e) { assert.ok(e instanceof ProtocolError, `seed ${rng.seed}, input ${runs}: ${String(e)}`); }
            }
          }
        });
        off += n;
      }
      assert.ok(d.buffered <= 8191, 'the decoder buffers at most one seed frame, never a BIG payload');
    } catch (e) {
      assert.ok(e instanceof ProtocolError, `untyped error at input ${runs} of seed ${rng.seed}: ${String(e)}`);
      errors++;
    }
  }
  console.log(`# fuzz: ${runs} inputs, ${frames} frames, ${errors} typed errors`);
  assert.ok(runs > 100);
});
