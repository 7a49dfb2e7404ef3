import { z } from 'zod';
import { P2pProtocolError } from './errors.ts';
import { b64url32, MAX_TICKET_CHARS } from './ticket.ts';
import { decodeJson } from './json-message.ts';

/**
 * The end-to-end path's small messages (docs/p2p.md §9), each one JSON object:
 *
 *  - on the client's link to the gateway, after the connect reply, one per line both ways
 *    (ClientToGateway, GatewayToClient);
 *  - inside the agent's link, as the params of an E2E command (AgentToGateway, GatewayToAgent);
 *  - first on the end-to-end link, the client's ticket line and the agent's answer line.
 */
export const MAX_E2E_LINE = 8192;

const hex16 = z.string().regex(/^[0-9a-f]{32}$/, 'must be 16 bytes in hex');
const key32 = b64url32;

/** `p2p` as the client asks: `auto` tries a direct path, `off` stays on the relay. */
export const P2pMode = z.enum(['auto', 'off']);
export type P2pMode = z.infer<typeof P2pMode>;

/** What a client adds to its connect request to ask for the end-to-end path. */
export const E2eRequest = z.strictObject({ client_key: key32, p2p: P2pMode });
export type E2eRequest = z.infer<typeof E2eRequest>;

/** The gateway's answer when the end-to-end path is on: what the client needs to reach the agent. */
export interface E2eGrant {
  /** The agent's static X25519 link key (base64url), which the client pins for this link. */
  agent_key: string;
  ticket: string;
  /** Whether the gateway lets this client try a direct path; when not, `why`. */
  direct: boolean;
  why?: string;
}

export const ClientToGateway = z.discriminatedUnion('t', [
  /** A new relayed transport, please: answered by {t:'relay', token}. */
  z.strictObject({ t: z.literal('relay') }),
  /** A punch, please: answered by {t:'punch', session}. */
  z.strictObject({ t: z.literal('punch') }),
  /** The path the end-to-end link is on now, and why (the report `dk connect` prints). */
  z.strictObject({
    t: z.literal('path'),
    path: z.enum(['relay', 'direct']),
    reason: z.string().max(1000),
    /** A punch's outcome, when this report follows one. */
    punch: z.enum(['direct', 'failed']).optional(),
    rtt_ms: z.number().nonnegative().max(600_000).optional(),
  }),
  /** The end-to-end link's round trip now (sent now and then). */
  z.strictObject({ t: z.literal('rtt'), rtt_ms: z.number().nonnegative().max(600_000) }),
]);
export type ClientToGateway = z.infer<typeof ClientToGateway>;

export const GatewayToClient = z.discriminatedUnion('t', [
  z.strictObject({ t: z.literal('relay'), token: hex16 }),
  z.strictObject({ t: z.literal('punch'), session: hex16 }),
  z.strictObject({ t: z.literal('error'), message: z.string().max(500) }),
]);
export type GatewayToClient = z.infer<typeof GatewayToClient>;

export const AgentToGateway = z.discriminatedUnion('t', [
  /** The agent's static link key (X25519, raw, base64url). */
  z.strictObject({ t: z.literal('link_key'), key: key32 }),
]);
export type AgentToGateway = z.infer<typeof AgentToGateway>;

export const GatewayToAgent = z.discriminatedUnion('t', [
  /** The gateway's Ed25519 ticket key, and its clock (the agent checks expiry on the gateway's time). */
  z.strictObject({ t: z.literal('ticket_key'), key: key32, now: z.number().int().nonnegative() }),
  /** Join relay `token` (side 2) on serv_port: a client is waiting at the other end. */
  z.strictObject({ t: z.literal('relay'), token: hex16 }),
  /** Join punch `session` at the coordinator on serv_port. */
  z.strictObject({ t: z.literal('punch'), session: hex16 }),
  /** The client of ticket `ticket` is gone or no longer allowed: end its end-to-end link. */
  z.strictObject({ t: z.literal('end'), ticket: hex16 }),
  /** The client of ticket `ticket` is still allowed: its link lives on (e2e-timing.ts E2E_LEASE_MS). */
  z.strictObject({ t: z.literal('keep'), ticket: hex16 }),
]);
export type GatewayToAgent = z.infer<typeof GatewayToAgent>;

/** The client's first line on the end-to-end link. */
export const TicketLine = z.strictObject({ ticket: z.string().min(1).max(MAX_TICKET_CHARS), proof: z.string().regex(/^[A-Za-z0-9_-]{86}$/) });
export type TicketLine = z.infer<typeof TicketLine>;

/** The agent's answer to it. */
export const TicketAnswer = z.union([
  z.strictObject({ ok: z.literal(true) }),
  z.strictObject({ ok: z.literal(false), code: z.string().max(64), message: z.string().max(500) }),
]);
export type TicketAnswer = z.infer<typeof TicketAnswer>;

/** One message from text; throws P2pProtocolError with the first problem. */
export function decodeE2e<T>(schema: z.ZodType<T>, text: string): T {
  if (text.length > MAX_E2E_LINE) throw new P2pProtocolError(`message longer than ${MAX_E2E_LINE} bytes`);
  return decodeJson(schema, text, 'message');
}

export function e2eLine(msg: object): string {
  return `${JSON.stringify(msg)}\n`;
}
