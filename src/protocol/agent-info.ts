import { PayloadError } from './errors.ts';

/**
 * AGENT_INFO (command 9, feature INFO): what the agent tells the gateway about itself after HELLO.
 * Params: the agent's version as UTF-8, 1-64 bytes of printable ASCII (a semver like "0.1.0" or
 * "0.2.0-rc.1+abc"); anything else is a protocol error.
 */
export const MAX_VERSION_BYTES = 64;
const PRINTABLE = /^[\x21-\x7e]+$/;

export function encodeAgentInfo(version: string): Buffer {
  const b = Buffer.from(version, 'utf8');
  if (b.length === 0 || b.length > MAX_VERSION_BYTES || !PRINTABLE.test(version)) throw new PayloadError(`an agent version is 1-${MAX_VERSION_BYTES} printable ASCII characters, got ${JSON.stringify(version)}`);
  return b;
}

export function decodeAgentInfo(p: Buffer): { version: string } {
  const version = p.toString('latin1');
  if (p.length === 0 || p.length > MAX_VERSION_BYTES || !PRINTABLE.test(version)) throw new PayloadError(`AGENT_INFO: a version of 1-${MAX_VERSION_BYTES} printable ASCII bytes, got ${p.length} bytes`);
  return { version };
}
