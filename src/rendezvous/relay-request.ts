/**
 * The relay's first message: what hbbr's `make_pair_` (relay_server.rs) accepts before a
 * connection may wait for its partner. Pure: payload bytes in, a uuid or a refusal out.
 *
 * hbbr: the first frame (or WebSocket binary message) must parse as a RendezvousMessage carrying
 * RequestRelay; when hbbr has a key, `licence_key` must equal it, byte for byte; `uuid` must not
 * be empty. Anything else and the connection is dropped without a word: nothing is ever sent
 * back by the relay, not even on success.
 */
import { decodeRendezvous } from './messages.ts';

/** Why a connection's first message did not make it a relay half. */
export type RequestRefusal = 'malformed' | 'not_request_relay' | 'key_mismatch' | 'no_uuid';

export type RequestCheck =
  | { ok: true; uuid: string; id: string }
  | { ok: false; reason: RequestRefusal };

/**
 * Checks a first message against the relay's enforced key (`null`: none, like hbbr's default
 * empty key). `id` is the peer id the controlling side names (empty from the controlled side).
 */
export function checkRelayRequest(payload: Uint8Array, key: string | null): RequestCheck {
  let msg;
  try {
    msg = decodeRendezvous(payload);
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (msg.union.case !== 'requestRelay') return { ok: false, reason: 'not_request_relay' };
  const rr = msg.union.value;
  if (key !== null && key !== '' && rr.licenceKey !== key) return { ok: false, reason: 'key_mismatch' };
  if (rr.uuid === '') return { ok: false, reason: 'no_uuid' };
  return { ok: true, uuid: rr.uuid, id: rr.id };
}
