import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { test, type TestContext } from 'node:test';
import { Forwarder } from '../../src/connect/forwarder.ts';
import { readLine } from '../../src/connect/protocol.ts';
import { generateKeyPair } from '../../src/link/crypto.ts';
import { Mux } from '../../src/mux/mux.ts';
import { encodeRelayHeader, RelaySide } from '../../src/p2p/relay-header.ts';
import { ed25519FromPem, generateEd25519, signTicket, type TicketClaims } from '../../src/p2p/ticket.ts';
import { Feature } from '../../src/protocol/index.ts';
import { silentLogger } from '../../src/util/log.ts';
import { ADMIN } from '../helpers/stack.ts';
import { dk } from '../helpers/cli.ts';
import { e2eStack, askE2e, presentTicket } from '../helpers/e2e.ts';
import { listen, readAll, waitFor } from '../helpers/net.ts';
import { recorder } from '../mux/helpers.ts';

/**
 * What the agent accepts on an end-to-end link (docs/p2p.md §9, docs/security.md): only a ticket
 * the gateway signed, for this backend, unexpired on the gateway's clock, taken once, and proved
 * by the client it names; then only the ticket's targets. Each test plays a hostile client by
 * hand over the real protocol against a real gateway and agent on loopback.
 */
const stack = (t: TestContext) => e2eStack(t);

test('a ticket presented by another client (who does not hold the key it names) is refused; so is a second use by its own client', async (t) => {
  const { gw, ag, echo, gatewayKey } = await stack(t);
  const alice = await askE2e(gw.servPort, gatewayKey, ADMIN, echo.port);
  t.after(() => alice.control.destroy());
  // Mallory copied the ticket (and may even have asked for her own relay): she proves with her own key.
  const mallory = generateEd25519();
  const stolen = await presentTicket(alice, gw.servPort, { proveWith: mallory.privateKey });
  assert.deepEqual({ ok: stolen.answer.ok, code: stolen.answer.code }, { ok: false, code: 'ticket_not_yours' });
  // Alice herself: accepted once…
  const first = await presentTicket(alice, gw.servPort);
  assert.deepEqual(first.answer, { ok: true });
  // …and not twice (a replay of her own first message on another link session).
  const again = await presentTicket(alice, gw.servPort);
  assert.deepEqual({ ok: again.answer.ok, code: again.answer.code }, { ok: false, code: 'ticket_used' });
  assert.equal(ag.e2e?.links, 1, 'only the accepted link lives');
  assert.equal(ag.e2e?.counts.refused, 2);
  first.stream.destroy();
});

test('an expired ticket, a ticket signed by another key, and one for another backend are refused', async (t) => {
  const { gw, echo, gatewayKey } = await stack(t);
  const a = await askE2e(gw.servPort, gatewayKey, ADMIN, echo.port);
  t.after(() => a.control.destroy());
  // The gateway's own ticket key (in its data dir), as the gateway would sign it — only the times differ.
  const gwKey = ed25519FromPem(readFileSync(join(gw.dataDir, 'ticket_key'), 'utf8'));
  const claims = (over: Partial<TicketClaims>): TicketClaims => ({
    v: 1, id: randomBytes(16).toString('hex'), user: 'admin', backend: 'home', client: a.key.publicRaw.toString('base64url'),
    targets: [{ host: '127.0.0.1', port: echo.port }], iat: Date.now() - 120_000, exp: Date.now() - 60_000, ...over,
  });
  const expired = await presentTicket(a, gw.servPort, { ticket: signTicket(gwKey.privateKey, claims({})) });
  assert.equal(expired.answer.code, 'ticket_expired', JSON.stringify(expired.answer));
  const forged = await presentTicket(a, gw.servPort, { ticket: signTicket(generateEd25519().privateKey, claims({ iat: Date.now(), exp: Date.now() + 60_000 })) });
  assert.equal(forged.answer.code, 'bad_ticket');
  assert.match(forged.answer.message ?? '', /not signed by this gateway/);
  const other = await presentTicket(a, gw.servPort, { ticket: signTicket(gwKey.privateKey, claims({ backend: 'office', iat: Date.now(), exp: Date.now() + 60_000 })) });
  assert.equal(other.answer.code, 'wrong_backend');
  // The same claims, fresh, are accepted: the refusals above were for the times, the key and the backend alone.
  const fresh = await presentTicket(a, gw.servPort, { ticket: signTicket(gwKey.privateKey, claims({ iat: Date.now(), exp: Date.now() + 60_000 })) });
  assert.deepEqual(fresh.answer, { ok: true });
  fresh.stream.destroy();
});

test('a session for a target outside the ticket is refused by the agent (CLS), and the target is never dialled', async (t) => {
  const { gw, ag, echo, gatewayKey } = await stack(t);
  let dialled = 0;
  const other = await listen((s) => { dialled++; s.destroy(); });
  t.after(() => other.server.close());
  const a = await askE2e(gw.servPort, gatewayKey, ADMIN, echo.port);
  t.after(() => a.control.destroy());
  const { stream, answer } = await presentTicket(a, gw.servPort);
  assert.deepEqual(answer, { ok: true });
  const mux = await new Promise<Mux>((resolve, reject) => {
    const m: Mux = new Mux(stream, {
      role: 'gateway', maxSessions: 16, keepaliveMs: 0, deadAfterMs: 0, features: Feature.FLOW | Feature.PONG,
      onHello: () => resolve(m), onClose: (err) => reject(err ?? new Error('closed')),
    });
    stream.resume();
  });
  t.after(() => mux.destroy());
  // The ticket's own target works…
  const ok = mux.open(echo.port, '127.0.0.1');
  const okR = recorder();
  ok.attach(okR, () => undefined);
  ok.write(Buffer.from('ping'));
  await waitFor(() => okR.bytes === 4, 5000, 'the echo through the ticket\'s target');
  // …another port on the same host (allowed by the agent's lan_nets, 127.0.0.0/8) is not in the ticket.
  const bad = mux.open(other.port, '127.0.0.1');
  const badR = recorder();
  bad.attach(badR, () => undefined);
  await waitFor(() => badR.reason !== null, 5000, 'the refused session closed');
  assert.equal(badR.reason, 'remote');
  assert.equal(badR.bytes, 0);
  assert.equal(dialled, 0, 'the agent never dialled the target outside the ticket');
  assert.match(ag.e2e?.lastRefusal ?? '', /not in the ticket/);
});

test('a client that pins another agent key is refused: by dk connect at once (exit 6), and by the link if it talks to the agent anyway', async (t) => {
  const { gw, echo, gatewayKey } = await stack(t);
  const wrong = generateKeyPair().publicRaw;
  const fwd = new Forwarder({
    gatewayHost: '127.0.0.1', gatewayPort: gw.servPort, gatewayKey, token: ADMIN, backend: 'home', port: echo.port,
    bind: '127.0.0.1', localPort: 0, log: silentLogger, agentKey: wrong,
  });
  await assert.rejects(fwd.open(), (e: Error & { code?: string }) => e.code === 'agent_key_mismatch');
  fwd.close();
  // Talking to the agent with the wrong key regardless: the agent cannot prove it, the link never forms.
  const a = await askE2e(gw.servPort, gatewayKey, ADMIN, echo.port);
  t.after(() => a.control.destroy());
  await assert.rejects(presentTicket(a, gw.servPort, { serverKey: wrong }), (e: Error & { code?: string }) => e.code === 'DK_LINK_SERVER_AUTH');
  // The real dk connect with a wrong --agent-key: one line, exit 6.
  const p = dk(['connect', 'home', String(echo.port), '--stdio', '--gateway', `127.0.0.1:${gw.servPort}`, '--gateway-key', gatewayKey.toString('base64url'), '--agent-key', wrong.toString('base64url')],
    { stdin: 'pipe', env: { DK_TOKEN: ADMIN } });
  const { code } = await p.exited;
  assert.equal(code, 6, p.err());
  assert.equal(p.out(), '');
  assert.match(p.err(), /^dk: the gateway says backend "home"'s agent has the key \S+, not the pinned --agent-key\n$/);
  // And with the right one, the same command carries the session.
  const right = dk(['connect', 'home', String(echo.port), '--stdio', '--gateway', `127.0.0.1:${gw.servPort}`, '--gateway-key', gatewayKey.toString('base64url'), '--agent-key', gw.gateway.agents.get('home')!.e2eKey!],
    { stdin: 'pipe', env: { DK_TOKEN: ADMIN } });
  right.stdin!.end('pinned\n');
  const done = await right.exited;
  assert.equal(done.code, 0, right.err());
  assert.equal(right.out(), 'pinned\n');
});

test('relay joins: an unknown token, and a second join of the same side, are closed without pairing', async (t) => {
  const { gw, echo, gatewayKey } = await stack(t);
  const join = async (side: 1 | 2, token: Buffer): Promise<{ closed: boolean; data: number }> => {
    const s = connect({ host: '127.0.0.1', port: gw.servPort });
    s.write(encodeRelayHeader(side === 1 ? RelaySide.CLIENT : RelaySide.AGENT, token));
    s.write('DKL1 and then some bytes');
    const r = await readAll(s, 3000);
    return { closed: r.eof || r.error, data: r.data.length };
  };
  const unknown = await join(1, randomBytes(16));
  assert.deepEqual(unknown, { closed: true, data: 0 });
  const a = await askE2e(gw.servPort, gatewayKey, ADMIN, echo.port);
  t.after(() => a.control.destroy());
  a.control.write('{"t":"relay"}\n');
  const line = await readLine(a.control, 5000);
  const token = Buffer.from((JSON.parse(line) as { token: string }).token, 'hex');
  // The agent joined as side 2 already (the gateway told it); a second side-2 join is refused.
  await waitFor(() => gw.gateway.e2e.relay.halfJoined === 1, 3000, 'the agent\'s half waiting');
  const second = await join(2, token);
  assert.deepEqual(second, { closed: true, data: 0 });
  assert.equal(gw.gateway.e2e.relay.halfJoined, 1, 'the agent\'s half still waits for the real client');
  assert.equal(gw.gateway.e2e.relay.pairCount, 0, 'nothing paired');
});

test('a client flooding its control link: relay requests past 30 a minute get an error; past 600 messages a minute the link is closed', async (t) => {
  const { gw, echo, gatewayKey } = await stack(t);
  const a = await askE2e(gw.servPort, gatewayKey, ADMIN, echo.port);
  t.after(() => a.control.destroy());
  const answers: string[] = [];
  let buf = '';
  a.control.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) { answers.push(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
  });
  a.control.resume();
  for (let i = 0; i < 31; i++) a.control.write('{"t":"relay"}\n');
  await waitFor(() => answers.length === 31, 5000, '31 answers');
  assert.equal(answers.filter((l) => l.startsWith('{"t":"relay"')).length, 30);
  assert.match(answers[30]!, /^\{"t":"error","message":"more than 30 relay requests in a minute"\}$/);
  assert.equal(gw.gateway.e2e.clients.size, 1);
  const closed = new Promise<void>((resolve) => a.control.once('close', () => resolve()));
  for (let i = 0; i < 600; i++) a.control.write('{"t":"rtt","rtt_ms":1}\n');
  await closed;
  await waitFor(() => gw.gateway.e2e.clients.size === 0, 5000, 'the client gone');
  // The relay tokens the flood made are capped per user (64) and expire unpaired after 15 s.
  assert.ok(gw.gateway.e2e.relay.pendingCount <= 64);
});
