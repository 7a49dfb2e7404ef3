import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { P2pError } from '../../src/p2p/errors.ts';
import { AgentToGateway, ClientToGateway, decodeE2e, GatewayToAgent, GatewayToClient, TicketAnswer, TicketLine } from '../../src/p2p/e2e-messages.ts';
import { decodeRelayHeader, encodeRelayHeader, RELAY_HEADER_BYTES, RelaySide } from '../../src/p2p/relay-header.ts';
import { checkTicketProof, generateEd25519, signTicket, ticketIdOf, ticketProof, TicketError, verifyTicket, type TicketClaims } from '../../src/p2p/ticket.ts';
import { Prng } from '../helpers/prng.ts';

/** The end-to-end path's codecs (docs/p2p.md §9.7): vectors, tampering, and seeded fuzzing of every parser of untrusted input. */

const claims = (over: Partial<TicketClaims> = {}): TicketClaims => ({
  v: 1, id: '00112233445566778899aabbccddeeff', user: 'alice', backend: 'home', client: generateEd25519().publicRaw.toString('base64url'),
  targets: [{ host: '192.168.1.10', port: 22 }], iat: 1_800_000_000_000, exp: 1_800_000_060_000, ...over,
});

test('relay header: "DKR1" side token, byte for byte; a wrong magic, side or length is refused', () => {
  const token = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
  const h = encodeRelayHeader(RelaySide.AGENT, token);
  assert.equal(h.toString('hex'), '444b5231' + '02' + '000102030405060708090a0b0c0d0e0f');
  assert.equal(h.length, RELAY_HEADER_BYTES);
  assert.deepEqual(decodeRelayHeader(h), { side: 2, token });
  assert.throws(() => decodeRelayHeader(Buffer.concat([Buffer.from('DKL1'), h.subarray(4)])), /bad magic/);
  assert.throws(() => decodeRelayHeader(Buffer.concat([h.subarray(0, 4), Buffer.from([3]), token])), /unknown side 3/);
  assert.throws(() => decodeRelayHeader(h.subarray(0, 20)), /21 bytes/);
  assert.throws(() => encodeRelayHeader(RelaySide.CLIENT, Buffer.alloc(15)), /16 bytes/);
});

test('ticket: signed claims verify under the gateway key only; any changed byte, another key or a malformed text is a TicketError', () => {
  const gw = generateEd25519();
  const c = claims();
  const t = signTicket(gw.privateKey, c);
  assert.deepEqual(verifyTicket(gw.publicKey, t), c);
  assert.equal(ticketIdOf(t), c.id);
  assert.throws(() => verifyTicket(generateEd25519().publicKey, t), (e: Error) => e instanceof TicketError && /not signed by this gateway/.test(e.message));
  const [body, sig] = t.split('.') as [string, string];
  // A changed claim (another target) keeps the old signature: refused.
  const forged = Buffer.from(JSON.stringify({ ...c, targets: [{ host: '192.168.1.11', port: 22 }] })).toString('base64url');
  assert.throws(() => verifyTicket(gw.publicKey, `${forged}.${sig}`), TicketError);
  // (Not the last character: its low bits may be padding that decodes to the same bytes.)
  for (let i = 0; i < body.length - 1; i += 7) {
    const flipped = body.slice(0, i) + (body[i] === 'A' ? 'B' : 'A') + body.slice(i + 1);
    assert.throws(() => verifyTicket(gw.publicKey, `${flipped}.${sig}`), TicketError, `byte ${i}`);
  }
  for (const bad of ['', '.', 'abc', 'a.b.c', `${body}.`, `.${sig}`, `${body}.${sig}!`, 'x'.repeat(5000)]) {
    assert.throws(() => verifyTicket(gw.publicKey, bad), TicketError, JSON.stringify(bad.slice(0, 20)));
  }
  // Claims outside the schema are refused even when signed (a gateway bug must not widen a ticket).
  assert.throws(() => signTicket(gw.privateKey, claims({ targets: [] })));
  assert.throws(() => ticketIdOf('not-a-ticket'), TicketError);
});

test('ticket proof: bound to the client key, the link session id and the ticket id', () => {
  const client = generateEd25519();
  const c = claims({ client: client.publicRaw.toString('base64url') });
  const sid = randomBytes(16);
  const proof = ticketProof(client.privateKey, sid, c.id);
  assert.equal(checkTicketProof(c, sid, proof), true);
  assert.equal(checkTicketProof(c, randomBytes(16), proof), false, 'another session');
  assert.equal(checkTicketProof({ ...c, id: 'ffeeddccbbaa99887766554433221100' }, sid, proof), false, 'another ticket');
  assert.equal(checkTicketProof(c, sid, ticketProof(generateEd25519().privateKey, sid, c.id)), false, 'another key');
  assert.equal(checkTicketProof(c, sid, 'AAAA'), false, 'too short');
  assert.equal(checkTicketProof({ ...c, client: 'A'.repeat(43) }, sid, proof), false, 'a client key that is not a point on the curve, or not this one');
});

test('end-to-end messages: what each side may send, and nothing else', () => {
  assert.deepEqual(decodeE2e(ClientToGateway, '{"t":"relay"}'), { t: 'relay' });
  assert.deepEqual(decodeE2e(ClientToGateway, '{"t":"path","path":"direct","reason":"x","punch":"direct","rtt_ms":3}'), { t: 'path', path: 'direct', reason: 'x', punch: 'direct', rtt_ms: 3 });
  assert.deepEqual(decodeE2e(GatewayToClient, '{"t":"relay","token":"00112233445566778899aabbccddeeff"}'), { t: 'relay', token: '00112233445566778899aabbccddeeff' });
  assert.deepEqual(decodeE2e(GatewayToAgent, '{"t":"end","ticket":"00112233445566778899aabbccddeeff"}'), { t: 'end', ticket: '00112233445566778899aabbccddeeff' });
  for (const [schema, text] of [
    [ClientToGateway, '{"t":"relay","extra":1}'], [ClientToGateway, '{"t":"path","path":"gateway","reason":""}'], [ClientToGateway, `{"t":"path","path":"relay","reason":"${'x'.repeat(1001)}"}`],
    [GatewayToClient, '{"t":"relay","token":"00"}'], [GatewayToAgent, '{"t":"ticket_key","key":"short","now":1}'], [AgentToGateway, '{"t":"link_key"}'],
    [TicketLine, '{"ticket":"a.b","proof":"short"}'], [TicketAnswer, '{"ok":false}'], [ClientToGateway, '[]'], [ClientToGateway, 'null'], [ClientToGateway, '{'],
  ] as const) {
    assert.throws(() => decodeE2e(schema as never, text), P2pError, text.slice(0, 60));
  }
  assert.throws(() => decodeE2e(ClientToGateway, ' '.repeat(9000)), /longer than/);
});

test('seeded fuzz: random and mutated input to every end-to-end parser only ever gives a P2pError (2 s)', () => {
  const rng = Prng.fromEnv();
  console.log(`# e2e codec fuzz seed ${rng.seed} (replay: DK_FUZZ_SEED=${rng.seed})`);
  const gw = generateEd25519();
  const valid = [
    '{"t":"relay"}', '{"t":"punch"}', '{"t":"path","path":"relay","reason":"r","rtt_ms":1}', '{"t":"rtt","rtt_ms":2}',
    '{"t":"relay","token":"00112233445566778899aabbccddeeff"}', '{"t":"ticket_key","key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","now":5}',
    JSON.stringify({ ticket: signTicket(gw.privateKey, claims()), proof: 'A'.repeat(86) }), '{"ok":true}',
  ];
  const schemas = [ClientToGateway, GatewayToClient, AgentToGateway, GatewayToAgent, TicketLine, TicketAnswer];
  const ticket = signTicket(gw.privateKey, claims());
  const end = Date.now() + 2000;
  let n = 0;
  const only = (f: () => unknown): void => {
    try { f(); } catch (e) { if (!(e instanceof P2pError)) throw new Error(`not a P2pError (seed ${rng.seed}, input ${n}): ${(e as Error).stack}`); }
  };
  while (Date.now() < end) {
    n++;
    const base = valid[rng.int(valid.length)]!;
    const mutated = rng.int(2) === 0 ? rng.bytes(rng.int(64)).toString('latin1') : base.slice(0, rng.int(base.length)) + rng.bytes(rng.int(4)).toString('latin1') + base.slice(rng.int(base.length));
    for (const s of schemas) only(() => decodeE2e(s as never, mutated));
    const tk = ticket.slice(0, rng.int(ticket.length)) + rng.bytes(rng.int(3)).toString('base64url') + ticket.slice(rng.int(ticket.length));
    only(() => verifyTicket(gw.publicKey, tk));
    only(() => decodeRelayHeader(rng.int(2) === 0 ? rng.bytes(RELAY_HEADER_BYTES) : Buffer.concat([Buffer.from('DKR1'), rng.bytes(rng.int(30))])));
  }
  assert.ok(n > 500, `${n} inputs`);
  console.log(`# e2e codec fuzz: ${n} inputs`);
});
