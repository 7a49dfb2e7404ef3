import type { z } from 'zod';
import { P2pProtocolError } from './errors.ts';

/**
 * One JSON message checked against its schema: the coordination lines and the end-to-end path's
 * messages both come from untrusted peers. Throws P2pProtocolError naming `what` and the first problem.
 */
export function decodeJson<T>(schema: z.ZodType<T>, text: string, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new P2pProtocolError(`${what} is not JSON`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new P2pProtocolError(`bad ${what}: ${issue ? `${issue.path.join('.') || '(message)'}: ${issue.message}` : 'invalid'}`);
  }
  return parsed.data;
}
