import { isIP } from 'node:net';
import { z } from 'zod';
import { MAX_CANDIDATES } from './candidate.ts';
import { decodeJson } from './json-message.ts';

/**
 * The coordination protocol of the lab's coordinator (docs/p2p.md §5): newline-delimited JSON over
 * plain TCP, one object per line. Each side connects from the port it will punch from.
 *
 *   side → coordinator   {"t":"hello","session":"s1","lan":[{"host":"198.19.1.2","port":40000}]}
 *   coordinator → side   {"t":"ping","n":1}                 (a few times: the coordinator measures RTT)
 *   side → coordinator   {"t":"pong","n":1}
 *   coordinator → side   {"t":"go","role":"initiator","token":"<32 hex>","observed":{host,port},
 *                         "peer":[{"kind":"public",host,port},{"kind":"lan",host,port}…],"delayMs":12}
 *   coordinator → side   {"t":"error","message":"…"}        (then it closes)
 *
 * `observed` is the address and port the coordinator saw the side's connection come from (its
 * NAT's public mapping); `delayMs` is how long the side waits before dialling, so that both start
 * at the same moment (coord-schedule.ts).
 */
export const MAX_LINE_BYTES = 4096;
export const SESSION_RE = /^[A-Za-z0-9_-]{1,64}$/;

// Syntax only: which addresses may be dialled is the dialling side's policy (candidate.ts orderCandidates).
const host = z.string().max(45).refine((h) => isIP(h) !== 0, 'must be an IP address');
const port = z.number().int().min(1).max(65_535);
const address = z.strictObject({ host, port });
const candidate = z.strictObject({ kind: z.enum(['public', 'lan']), host, port });

export const helloSchema = z.strictObject({ t: z.literal('hello'), session: z.string().regex(SESSION_RE), lan: z.array(address).max(MAX_CANDIDATES) });
export const pongSchema = z.strictObject({ t: z.literal('pong'), n: z.number().int().min(0).max(1_000) });
export const pingSchema = z.strictObject({ t: z.literal('ping'), n: z.number().int().min(0).max(1_000) });
export const goSchema = z.strictObject({
  t: z.literal('go'),
  role: z.enum(['initiator', 'responder']),
  token: z.string().regex(/^[0-9a-f]{32}$/),
  observed: address,
  peer: z.array(candidate).max(MAX_CANDIDATES + 1),
  delayMs: z.number().int().min(0).max(10_000),
});
export const errorSchema = z.strictObject({ t: z.literal('error'), message: z.string().max(500) });

export const toCoordinatorSchema = z.discriminatedUnion('t', [helloSchema, pongSchema]);
export const toSideSchema = z.discriminatedUnion('t', [pingSchema, goSchema, errorSchema]);

export type Hello = z.infer<typeof helloSchema>;
export type Go = z.infer<typeof goSchema>;
export type ToCoordinator = z.infer<typeof toCoordinatorSchema>;
export type ToSide = z.infer<typeof toSideSchema>;

/** One message as a line (with its "\n"). */
export function encodeLine(msg: ToCoordinator | ToSide): Buffer {
  return Buffer.from(`${JSON.stringify(msg)}\n`, 'utf8');
}

function decodeWith<T>(schema: z.ZodType<T>, line: string): T {
  return decodeJson(schema, line, 'coordination message');
}

/** A line a side sent to the coordinator; throws P2pProtocolError. */
export function decodeToCoordinator(line: string): ToCoordinator {
  return decodeWith(toCoordinatorSchema, line);
}

/** A line the coordinator sent to a side; throws P2pProtocolError. */
export function decodeToSide(line: string): ToSide {
  return decodeWith(toSideSchema, line);
}
