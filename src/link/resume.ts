import { randomBytes } from 'node:crypto';
import type { DirectionKeys } from './attachment.ts';
import { ResumeError } from './errors.ts';
import {
  checkResumeProof, checkResumeReply, KIND_RESUME, KIND_UNKNOWN, RESUME_CHALLENGE_SIZE, RESUME_SIZE, resumeHello, resumeProof,
  resumeReply, trafficKeys, type SessionSecrets,
} from './handshake.ts';
import type { LinkSession } from './session.ts';

/**
 * The RESUME exchange (docs/link.md §4) as pure state objects, like clientNew/serverNew for NEW:
 * bytes in, bytes out, no sockets or timers (client.ts and server.ts drive them over a
 * transport). The session's epoch changes here and nowhere else (LinkSession.enterEpoch).
 *
 *   C→S  "DKL1" 02 sid(16) cn(16)                 ResumeInitiator.hello   → ResumeResponder
 *   S→C  02 sn(16)   (or 03: no such session)     ResumeResponder.challenge → ResumeInitiator.prove
 *   C→S  epoch(u32) recv(u64) HMAC                ResumeInitiator.prove   → ResumeResponder.check, accept
 *   S→C  recv(u64) HMAC                           ResumeResponder.accept  → ResumeInitiator.finish
 *
 * Every failure is a ResumeError with a reason (errors.ts, ResumeFailure).
 */

/** The session a resume is for: what it reports, and its epoch. */
export type ResumableSession = Pick<LinkSession, 'epoch' | 'received' | 'enterEpoch'>;

/** What a completed resume gives the side that attaches: this epoch's keys and what the peer has. */
export interface Resumed {
  keys: DirectionKeys;
  peerReceived: number;
}

export class ResumeInitiator {
  readonly #session: ResumableSession;
  readonly #secrets: SessionSecrets;
  readonly #cn: Buffer;
  #sn: Buffer | null = null;
  #epoch = -1;

  constructor(session: ResumableSession, secrets: SessionSecrets, cn: Buffer = randomBytes(16)) {
    this.#session = session;
    this.#secrets = secrets;
    this.#cn = cn;
  }

  /** The first message. */
  hello(): Buffer {
    return resumeHello(this.#secrets.sessionId, this.#cn);
  }

  /** Whether the server's first byte says "no such session" (then there is nothing more to read). */
  static unknown(first: number | undefined): boolean {
    return first === KIND_UNKNOWN;
  }

  /**
   * The server's challenge (02 sn) in, the proof out. Takes the next epoch now: the server may
   * accept this proof even if its answer never arrives, so the next attempt must be newer still.
   */
  prove(challenge: Buffer): Buffer {
    if (challenge.length !== RESUME_CHALLENGE_SIZE || challenge[0] !== KIND_RESUME) {
      throw new ResumeError(challenge[0] === KIND_UNKNOWN ? 'unknown-session' : 'not-authentic', 'unexpected answer to the resume hello');
    }
    this.#sn = challenge.subarray(1);
    this.#epoch = this.#session.epoch + 1;
    this.#session.enterEpoch(this.#epoch);
    return resumeProof(this.#secrets, this.#cn, this.#sn, this.#epoch, this.#session.received);
  }

  /** The server's answer in: this epoch's keys (client side) and what the server has. */
  finish(reply: Buffer): Resumed {
    if (!this.#sn) throw new ResumeError('not-authentic', 'resume answer before the challenge');
    const s = this.#secrets;
    const peerReceived = checkResumeReply(s, this.#cn, this.#sn, this.#epoch, reply);
    if (peerReceived === null) throw new ResumeError('not-authentic', 'resume answer not authentic');
    const k = trafficKeys(s.master, Buffer.concat([this.#cn, this.#sn]), this.#epoch);
    return { keys: { send: k.c2s, recv: k.s2c }, peerReceived };
  }
}

export class ResumeResponder {
  readonly sessionId: Buffer;
  readonly #cn: Buffer;
  readonly #sn: Buffer;
  #proof: { epoch: number; recv: number } | null = null;

  /** `hello` is the whole first message (RESUME_SIZE bytes, "DKL1" 02 included). */
  constructor(hello: Buffer, sn: Buffer = randomBytes(16)) {
    if (hello.length !== RESUME_SIZE) throw new ResumeError('not-authentic', 'bad RESUME length');
    this.sessionId = hello.subarray(5, 21);
    this.#cn = hello.subarray(21, 37);
    this.#sn = sn;
  }

  /** The answer for a session we do not have. */
  static unknownSession(): Buffer {
    return Buffer.from([KIND_UNKNOWN]);
  }

  challenge(): Buffer {
    return Buffer.concat([Buffer.from([KIND_RESUME]), this.#sn]);
  }

  /**
   * Checks the client's proof against the session, changing nothing: a replayed or forged proof
   * fails here (sn is fresh), and so does a stale epoch — the live connection is not touched.
   */
  check(session: ResumableSession, secrets: SessionSecrets, proof: Buffer): void {
    const p = checkResumeProof(secrets, this.#cn, this.#sn, proof);
    if (!p) throw new ResumeError('not-authentic', 'resume proof not authentic');
    if (p.epoch <= session.epoch) throw new ResumeError('stale-epoch', `stale resume epoch ${p.epoch} <= ${session.epoch}`);
    this.#proof = p;
  }

  /** Moves the session to the proof's epoch; the answer to send, this epoch's keys (server side) and what the client has. */
  accept(session: ResumableSession, secrets: SessionSecrets): Resumed & { reply: Buffer } {
    const p = this.#proof;
    if (!p) throw new ResumeError('not-authentic', 'accept before check');
    session.enterEpoch(p.epoch);
    const k = trafficKeys(secrets.master, Buffer.concat([this.#cn, this.#sn]), p.epoch);
    return {
      reply: resumeReply(secrets, this.#cn, this.#sn, p.epoch, session.received),
      keys: { send: k.s2c, recv: k.c2s },
      peerReceived: p.recv,
    };
  }
}
