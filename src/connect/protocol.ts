import { RequestLineError } from './errors.ts';
import type { Duplex } from 'node:stream';
import { z } from 'zod';
import { E2eRequest, type E2eGrant } from '../p2p/e2e-messages.ts';

/** What a link session is for, sealed inside the link's first message. */
export const Purpose = { AGENT: 1, CLIENT: 2 } as const;

/**
 * `dk connect` asks for a target with one JSON line inside its link session, and the gateway
 * answers with one JSON line; after that the session carries the DK chunk protocol, one mux
 * session per connection (`mux: true`), or the bytes of one connection. The grant is the
 * token's, checked per connection — not a source IP's.
 */
export const ConnectRequest = z.object({
  token: z.string().min(1).max(200),
  backend: z.string().min(1).max(64),
  port: z.number().int().min(1).max(65535),
  host: z.string().max(64).optional(),
  /** After the answer, the session carries the DK chunk protocol: one mux session per connection. */
  mux: z.boolean().optional(),
  /** Asks for the end-to-end path (with `mux`): the link to the agent itself, relayed or direct (docs/p2p.md §9). */
  e2e: E2eRequest.optional(),
}).strict();
export type ConnectRequest = z.infer<typeof ConnectRequest>;

export interface ConnectReply {
  ok: boolean;
  code?: string;
  message?: string;
  session?: string;
  /** The end-to-end path is on: the agent's key and the ticket (the rest of this link is the control channel). */
  e2e?: E2eGrant;
  /** The client asked for the end-to-end path and gets the gateway's path instead: why. */
  why?: string;
}

export const MAX_LINE = 4096;

/**
 * Reads one newline-terminated line (at most MAX_LINE bytes) from a stream within `timeoutMs`;
 * bytes after the newline are put back with unshift(). Rejects on overlong lines, EOF or timeout.
 */
export function readLine(s: Duplex, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (err: Error | null, line?: string, rest?: Buffer): void => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('end', onEnd);
      s.off('error', onError);
      s.pause();
      if (rest && rest.length > 0) s.unshift(rest);
      if (err) reject(err);
      else resolve(line!);
    };
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      const nl = buf.indexOf(0x0a);
      if (nl >= 0) done(null, buf.subarray(0, nl).toString('utf8'), buf.subarray(nl + 1));
      else if (buf.length > MAX_LINE) done(new RequestLineError('DK_CONNECT_LINE_TOO_LONG', `line longer than ${MAX_LINE} bytes`));
    };
    const onEnd = (): void => done(new RequestLineError('DK_CONNECT_LINE_ENDED', 'stream ended before a full line'));
    const onError = (e: Error): void => done(e);
    const timer = setTimeout(() => done(new RequestLineError('DK_CONNECT_LINE_TIMEOUT', `no line within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    s.on('data', onData);
    s.once('end', onEnd);
    s.once('error', onError);
    s.resume();
  });
}
