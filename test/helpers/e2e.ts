/**
 * Driving the end-to-end path by hand (docs/p2p.md §9), for tests that play a client the real
 * `dk connect` would never be: one that replays a ticket, presents an old one, or opens a target
 * outside it. Each step is the protocol's own: the connect request on a link to the gateway, a
 * relay token on that link, a relay join on serv_port, the link to the agent, the ticket line.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import type { KeyObject } from 'node:crypto';
import { connectLink } from '../../src/link/client.ts';
import type { LinkStream } from '../../src/link/stream.ts';
import { Purpose, readLine, type ConnectReply } from '../../src/connect/protocol.ts';
import { e2eLine, type E2eGrant } from '../../src/p2p/e2e-messages.ts';
import { encodeRelayHeader, RELAY_HEADER_BYTES, RelaySide } from '../../src/p2p/relay-header.ts';
import { generateEd25519, ticketIdOf, ticketProof, type Ed25519Pair } from '../../src/p2p/ticket.ts';
import { connected } from '../../src/util/connect.ts';
import type { Gateway } from '../../src/gateway/gateway.ts';
import { echoServer, waitFor } from './net.ts';
import { agent, gateway, online } from './stack.ts';

export interface Asked {
  control: LinkStream;
  grant: E2eGrant;
  key: Ed25519Pair;
}

/** A client's link to the gateway that asked for the end-to-end path to backend `home`. */
export async function askE2e(servPort: number, gatewayKey: Buffer, token: string, port: number, o: { key?: Ed25519Pair; p2p?: 'auto' | 'off'; host?: string } = {}): Promise<Asked & { reply: ConnectReply }> {
  const key = o.key ?? generateEd25519();
  const control = await connectLink({ host: '127.0.0.1', port: servPort, serverKey: gatewayKey, purpose: Purpose.CLIENT });
  control.on('error', () => undefined);
  control.write(JSON.stringify({ token, backend: 'home', port, ...(o.host ? { host: o.host } : {}), mux: true, e2e: { client_key: key.publicRaw.toString('base64url'), p2p: o.p2p ?? 'off' } }) + '\n');
  const reply = JSON.parse(await readLine(control, 10_000)) as ConnectReply;
  if (!reply.e2e) throw new Error(`no end-to-end grant: ${JSON.stringify(reply)}`);
  return { control, grant: reply.e2e, key, reply };
}

/** Asks the gateway for a relay token on the control link and joins it as the client. */
export async function relay(control: LinkStream, servPort: number): Promise<Socket> {
  control.write(e2eLine({ t: 'relay' }));
  const answer = JSON.parse(await readLine(control, 10_000)) as { t: string; token?: string; message?: string };
  if (answer.t !== 'relay' || !answer.token) throw new Error(`no relay: ${JSON.stringify(answer)}`);
  const s = connect({ host: '127.0.0.1', port: servPort, noDelay: true });
  s.write(encodeRelayHeader(RelaySide.CLIENT, Buffer.from(answer.token, 'hex')));
  return connected(s);
}

/**
 * The link to the agent over a fresh relay, and the agent's answer to `ticket` proved with
 * `proveWith` (the ticket's own client key by default).
 */
export async function presentTicket(a: Asked, servPort: number, o: { ticket?: string; proveWith?: KeyObject; serverKey?: Buffer } = {}): Promise<{ stream: LinkStream; answer: { ok: boolean; code?: string; message?: string } }> {
  const stream = await connectLink({
    host: '127.0.0.1', port: servPort, serverKey: o.serverKey ?? Buffer.from(a.grant.agent_key, 'base64url'), dial: () => relay(a.control, servPort), resumeForMs: 2_000,
  });
  stream.on('error', () => undefined);
  const ticket = o.ticket ?? a.grant.ticket;
  stream.write(e2eLine({ ticket, proof: ticketProof(o.proveWith ?? a.key.privateKey, stream.secrets.sessionId, ticketIdOf(ticket)) }));
  const answer = JSON.parse(await readLine(stream, 10_000)) as { ok: boolean; code?: string; message?: string };
  return { stream, answer };
}

/** A TCP proxy that keeps every byte it carries, both ways (what a gateway's operator could see on the wire). */
export async function tap(targetPort: number): Promise<{ port: number; bytes: () => Buffer; total: () => number; close(): void }> {
  const seen: Buffer[] = [];
  let total = 0;
  const socks = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (c) => {
    const u = connect({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true });
    socks.add(c).add(u);
    const keep = (b: Buffer): void => { seen.push(b); total += b.length; };
    c.on('data', keep);
    u.on('data', keep);
    c.pipe(u);
    u.pipe(c);
    const kill = (): void => { c.destroy(); u.destroy(); socks.delete(c); socks.delete(u); };
    c.on('error', kill).on('close', kill);
    u.on('error', kill).on('close', kill);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as { port: number }).port,
    bytes: () => Buffer.concat(seen),
    total: () => total,
    close() { server.close(); for (const s of socks) s.destroy(); },
  };
}

/**
 * A stand-in for the gateway's serv_port relay joins: a loopback server that collects each
 * connection's first RELAY_HEADER_BYTES (however they are split) and hands the socket and all it
 * has read so far to `onHeader`.
 */
export async function relayJoinServer(onHeader: (socket: Socket, head: Buffer) => void): Promise<{ port: number; close(): void }> {
  const server = createServer((s) => {
    s.on('error', () => undefined);
    let head = Buffer.alloc(0);
    const onData = (b: Buffer): void => {
      head = Buffer.concat([head, b]);
      if (head.length < RELAY_HEADER_BYTES) return;
      s.off('data', onData);
      onHeader(s, head);
    };
    s.on('data', onData);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as { port: number }).port, close: () => server.close() };
}

/**
 * Waits until backend `name`'s agent has told the gateway its end-to-end key. An agent not in the
 * registry has told nothing: `?.e2eKey` alone would be undefined there, which is not null.
 */
export async function agentKeyKnown(gw: { gateway: Gateway }, name = 'home'): Promise<void> {
  await waitFor(() => (gw.gateway.agents.get(name)?.e2eKey ?? null) !== null, 5000, 'the agent told its end-to-end key');
}

/**
 * A gateway and an agent on loopback whose end-to-end key the gateway knows, and an echo target:
 * what most end-to-end tests start from. `gatewayOver`/`agentOver` change their configs.
 */
export async function e2eStack(t: { after(f: () => unknown): void }, o: { gatewayOver?: Record<string, unknown>; agentOver?: Record<string, unknown> } = {}) {
  const gw = await gateway({ link_keepalive: 0.2, ...o.gatewayOver });
  const ag = await agent(gw.servPort, { keepalive: 0.2, ...o.agentOver });
  await online(gw);
  await agentKeyKnown(gw);
  const echo = await echoServer();
  t.after(async () => { echo.server.close(); await ag.stop(); await gw.cleanup(); });
  return { gw, ag, echo, gatewayKey: gw.gateway.linkKey.publicRaw };
}
