import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeAddrMangle, encodeAddrMangle } from '../../src/rendezvous/addr-mangle.ts';
import { RendezvousError } from '../../src/rendezvous/errors.ts';
import { encodeFrame, FrameDecoder } from '../../src/rendezvous/framing.ts';
import { generateKeyPair, openIdPk, signIdPk } from '../../src/rendezvous/keys.ts';
import { decodeRendezvous, encodeRendezvous, type RendezvousMessageInit } from '../../src/rendezvous/messages.ts';
import type { ConnType, NatType } from '../../src/rendezvous/gen/rendezvous_pb.ts';
import { Prng } from '../helpers/prng.ts';

const SECONDS = Number(process.env.DK_FUZZ_SECONDS ?? 2);
const rng = Prng.fromEnv();
const int = (a: number, b?: number): number => rng.int(a, b);
const bytes = (n: number): Buffer => rng.bytes(n);
const text = (max: number): string => bytes(int(max)).toString('latin1');
const server = generateKeyPair();
// Enum values include ones the .proto does not name: proto3 enums are open, and newer clients add values.
const nat = (): NatType => int(5) as NatType;
const conn = (): ConnType => int(8) as ConnType;

function addr(): Buffer {
  const v6 = int(4) === 0;
  const address = v6 ? `2001:db8::${int(0x10000).toString(16)}` : `${int(256)}.${int(256)}.${int(256)}.${int(256)}`;
  return encodeAddrMangle({ address, port: int(65536) }, rng.next());
}

function message(): RendezvousMessageInit {
  switch (int(10)) {
    case 0: return { union: { case: 'registerPeer', value: { id: text(12), serial: int(-5, 100) } } };
    case 1: return { union: { case: 'registerPk', value: { id: text(12), uuid: bytes(int(40)), pk: bytes(32), oldId: text(4) } } };
    case 2: return { union: { case: 'punchHoleRequest', value: { id: text(12), natType: nat(), licenceKey: text(44), connType: conn(), version: '1.4.9', udpPort: int(65536) } } };
    case 3: return { union: { case: 'punchHole', value: { socketAddr: addr(), relayServer: text(30), natType: nat() } } };
    case 4: return { union: { case: 'punchHoleResponse', value: { socketAddr: addr(), pk: signIdPk(text(10), bytes(32), server), union: int(2) ? { case: 'natType', value: nat() } : { case: 'isLocal', value: true } } } };
    case 5: return { union: { case: 'relayResponse', value: { socketAddr: addr(), uuid: text(36), union: { case: 'id', value: text(10) }, version: '1.4.9' } } };
    case 6: return { union: { case: 'localAddr', value: { socketAddr: addr(), localAddr: addr(), id: text(10) } } };
    case 7: return { union: { case: 'onlineRequest', value: { id: text(10), peers: Array.from({ length: int(20) }, () => text(10)) } } };
    case 8: return { union: { case: 'keyExchange', value: { keys: Array.from({ length: int(3) }, () => bytes(int(100))) } } };
    default: return { union: { case: 'testNatResponse', value: { port: int(65536), cu: { serial: int(10), rendezvousServers: [text(20)] } } } };
  }
}

function mutate(b: Buffer): Buffer {
  const m = Buffer.from(b);
  for (let i = int(1, 6); i > 0 && m.length > 0; i--) {
    const op = int(4);
    const at = int(m.length);
    if (op === 0) m[at] = int(256);
    else if (op === 1) m[at] = m[at]! ^ (1 << int(8));
    else if (op === 2) return Buffer.concat([m.subarray(0, at), bytes(int(16)), m.subarray(at)]);
    else return m.subarray(0, at);
  }
  return m;
}

const stats = { inputs: 0, frames: 0, messages: 0, addrs: 0, signed: 0, errors: new Map<string, number>() };
/** Runs fn; a RendezvousError is counted, anything else fails the test with the seed to replay. */
function typed(what: string, fn: () => void): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    assert.ok(e instanceof RendezvousError, `seed ${rng.seed}, input ${stats.inputs}, ${what}: untyped ${String(e)}`);
    stats.errors.set(e.code, (stats.errors.get(e.code) ?? 0) + 1);
    return false;
  }
}

function checkPayload(payload: Uint8Array): void {
  typed('message decode', () => {
    const m = decodeRendezvous(payload);
    stats.messages++;
    // What decodes re-encodes and decodes again (nothing in a decoded message breaks the encoder).
    decodeRendezvous(encodeRendezvous(m));
    const v = m.union.value as Record<string, unknown> | undefined;
    for (const k of ['socketAddr', 'localAddr']) {
      const a = v?.[k];
      if (a instanceof Uint8Array && a.length > 0) typed('addr decode', () => { decodeAddrMangle(a); stats.addrs++; });
    }
    const pk = v?.pk;
    if (m.union.case === 'punchHoleResponse' && pk instanceof Uint8Array) typed('signed IdPk', () => { openIdPk(pk, server.publicKey); stats.signed++; });
  });
}

test(`fuzz (${SECONDS}s, seed ${rng.seed}): framing, message and AddrMangle decoders give results or typed errors, with bounded buffering`, () => {
  // The seed fixes every input and every split: DK_FUZZ_SEED=N replays a run (as far as it got).
  console.log(`# fuzz seed ${rng.seed} (replay: DK_FUZZ_SEED=${rng.seed} DK_FUZZ_SECONDS=${SECONDS})`);
  const deadline = Date.now() + SECONDS * 1000;
  while (Date.now() < deadline) {
    stats.inputs++;
    const kind = int(4);
    if (kind === 3) {
      // Loose payloads and addresses, without framing.
      checkPayload(int(2) ? bytes(int(200)) : mutate(Buffer.from(encodeRendezvous(message()))));
      const a = int(2) ? bytes(int(24)) : mutate(addr());
      typed('addr decode', () => { decodeAddrMangle(a); stats.addrs++; });
      continue;
    }
    const valid = Buffer.concat(Array.from({ length: int(1, 8) }, () => encodeFrame(encodeRendezvous(message()))));
    const input = kind === 0 ? bytes(int(1, 5000)) : kind === 1 ? mutate(valid) : valid;
    const max = int(2) ? 4096 : int(1, 300);
    const d = new FrameDecoder({ maxFrameSize: max });
    let off = 0;
    typed('framing', () => {
      while (off < input.length) {
        const n = int(1, 600);
        for (const f of d.decode(input.subarray(off, off + n))) {
          stats.frames++;
          assert.ok(f.length <= max);
          checkPayload(f);
        }
        off += n;
        assert.ok(d.buffered < max + 4, `seed ${rng.seed}: ${d.buffered} bytes buffered with a ${max}-byte limit`);
      }
    });
  }
  const errors = [...stats.errors].map(([c, k]) => `${c} ${k}`).join(', ');
  console.log(`# fuzz: ${stats.inputs} inputs, ${stats.frames} frames, ${stats.messages} messages, ${stats.addrs} addresses, ${stats.signed} signed IdPks verified; typed errors: ${errors}`);
  assert.ok(stats.inputs > 100);
});
