import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';
import { P2pError } from './errors.ts';

/**
 * The ticket (docs/p2p.md §9): what the gateway gives a `dk connect` client it has authorized, for
 * the agent to check before it carries anything for that client on the end-to-end link. Signed
 * with the gateway's Ed25519 ticket key (the agent learns the public half over its pinned link);
 * it names the user, the backend, the targets the client may open, the client's own Ed25519 key,
 * and when it stops being accepted. The client proves it holds that key by signing the end-to-end
 * link's session id (known only to the two ends), so a ticket copied by anyone else is useless,
 * and the agent takes each ticket once.
 *
 *   ticket = base64url(JSON claims) "." base64url(Ed25519 signature over the JSON bytes)
 *   proof  = Ed25519(client key, "dk-ticket-proof v1" ‖ session id ‖ ticket id)
 */
export const MAX_TICKET_CHARS = 4096;
export const MAX_TICKET_TARGETS = 16;

export class TicketError extends P2pError {
  constructor(message: string) {
    super('DK_P2P_TICKET', message);
  }
}

/** A 32-byte key in base64url (tickets and the end-to-end messages). */
export const b64url32 = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be a 32-byte key in base64url');
export const TicketClaimsSchema = z.strictObject({
  v: z.literal(1),
  /** 16 random bytes, hex: what the agent remembers to take each ticket once. */
  id: z.string().regex(/^[0-9a-f]{32}$/),
  user: z.string().min(1).max(64),
  backend: z.string().min(1).max(64),
  /** The client's Ed25519 public key, raw, base64url. */
  client: b64url32,
  targets: z.array(z.strictObject({ host: z.string().max(45).refine((h) => isIP(h) !== 0, 'must be an IP address'), port: z.number().int().min(1).max(65535) }))
    .min(1).max(MAX_TICKET_TARGETS),
  /** Issued and expiry times, milliseconds since the epoch on the gateway's clock. */
  iat: z.number().int().nonnegative(),
  exp: z.number().int().nonnegative(),
  /** Sessions the user may hold open on all its end-to-end links to this agent together (the gateway's max_sessions_per_user). */
  max_sessions: z.number().int().min(1).optional(),
});
export type TicketClaims = z.infer<typeof TicketClaimsSchema>;

export interface Ed25519Pair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The public key's 32 raw bytes. */
  publicRaw: Buffer;
}

export function ed25519Raw(pub: KeyObject): Buffer {
  const x = pub.export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new TicketError('not an Ed25519 public key');
  return Buffer.from(x, 'base64url');
}

export function ed25519Public(raw: Buffer): KeyObject {
  if (raw.length !== 32) throw new TicketError('an Ed25519 public key is 32 bytes');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}

export function generateEd25519(): Ed25519Pair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, publicRaw: ed25519Raw(publicKey) };
}

/** A pair from its PKCS#8 PEM (how the gateway keeps its ticket key). */
export function ed25519FromPem(pem: string): Ed25519Pair {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new TicketError('not an Ed25519 private key');
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, publicRaw: ed25519Raw(publicKey) };
}

export function signTicket(key: KeyObject, claims: TicketClaims): string {
  const body = Buffer.from(JSON.stringify(TicketClaimsSchema.parse(claims)), 'utf8');
  return `${body.toString('base64url')}.${sign(null, body, key).toString('base64url')}`;
}

/**
 * The claims of a ticket whose signature verifies under `gatewayKey`; throws TicketError for
 * anything else (the backend, expiry, proof and one use are the agent's to check: E2eEndpoint).
 */
export function verifyTicket(gatewayKey: KeyObject, text: string): TicketClaims {
  if (text.length > MAX_TICKET_CHARS) throw new TicketError('ticket too long');
  const dot = text.indexOf('.');
  if (dot <= 0 || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(text)) throw new TicketError('malformed ticket');
  const body = Buffer.from(text.slice(0, dot), 'base64url');
  const sig = Buffer.from(text.slice(dot + 1), 'base64url');
  if (sig.length !== 64 || !verify(null, body, gatewayKey, sig)) throw new TicketError('ticket not signed by this gateway');
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new TicketError('ticket claims are not JSON');
  }
  const parsed = TicketClaimsSchema.safeParse(value);
  if (!parsed.success) throw new TicketError(`ticket claims: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

/** A ticket's id, read without checking anything (the client cannot check the gateway's signature; the agent does). */
export function ticketIdOf(text: string): string {
  try {
    const claims = JSON.parse(Buffer.from(text.slice(0, text.indexOf('.')), 'base64url').toString('utf8')) as { id?: unknown };
    if (typeof claims.id === 'string' && /^[0-9a-f]{32}$/.test(claims.id)) return claims.id;
  } catch {
    // below
  }
  throw new TicketError('the gateway sent a malformed ticket');
}

const PROOF_LABEL = Buffer.from('dk-ticket-proof v1');

function proofMessage(sessionId: Buffer, ticketId: string): Buffer {
  return Buffer.concat([PROOF_LABEL, sessionId, Buffer.from(ticketId, 'hex')]);
}

/** The client's proof that it holds the key its ticket names, bound to one link session. */
export function ticketProof(clientKey: KeyObject, sessionId: Buffer, ticketId: string): string {
  return sign(null, proofMessage(sessionId, ticketId), clientKey).toString('base64url');
}

export function checkTicketProof(claims: TicketClaims, sessionId: Buffer, proof: string): boolean {
  const sig = Buffer.from(proof, 'base64url');
  if (sig.length !== 64) return false;
  try {
    return verify(null, proofMessage(sessionId, claims.id), ed25519Public(Buffer.from(claims.client, 'base64url')), sig);
  } catch {
    return false;
  }
}
