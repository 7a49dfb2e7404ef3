import { connect, type Socket } from 'node:net';
import type { KeyObject } from 'node:crypto';
import { connectLink, logResumeFailures, migrateLink } from '../link/client.ts';
import type { LinkStream } from '../link/stream.ts';
import { decodeE2e, e2eLine, GatewayToClient, TicketAnswer, type ClientToGateway, type E2eGrant } from '../p2p/e2e-messages.ts';
import { E2E_DEAD_MS, E2E_PING_MS } from '../p2p/e2e-timing.ts';
import { LineDecoder } from '../p2p/lines.ts';
import { AnswerQueue } from '../p2p/answer-queue.ts';
import { punchSession } from '../p2p/punch-session.ts';
import { failureText, pathLine } from '../p2p/reason.ts';
import { encodeRelayHeader, RelaySide } from '../p2p/relay-header.ts';
import { ticketIdOf, ticketProof } from '../p2p/ticket.ts';
import { connected } from '../util/connect.ts';
import type { Logger } from '../util/log.ts';
import { CLIENT_CODES, ConnectRefusedError } from './errors.ts';
import { readLine } from './protocol.ts';

/** Requests waiting for the gateway's answer at most (it answers each in order). */
const MAX_WAITING = 32;
/** How long the client waits for the gateway's answer to a relay or punch request. */
const ANSWER_MS = 10_000;
/** Waits before the next punch after one failed: 10 s, doubling to 5 min. */
const RETRY_FIRST_MS = 10_000;
const RETRY_MAX_MS = 300_000;
/** Wait before punching again after a direct path was lost. */
const AFTER_LOSS_MS = 1_000;
/** How often the link's RTT goes to the gateway (GET /api/v1/links). */
const RTT_REPORT_MS = 5_000;

export type PathName = 'relay' | 'direct';

/** A path decision: what `dk connect` prints (a `path=` line) and tells the gateway. */
export interface PathEvent {
  path: PathName;
  line: string;
  /** Path changes so far (the first path is not a change). */
  changes: number;
}

export interface E2ePathInit {
  /** The client's link to the gateway after the connect reply: the control channel. */
  control: LinkStream;
  grant: E2eGrant;
  /** The client key the ticket names. */
  clientKey: KeyObject;
  gatewayHost: string;
  gatewayPort: number;
  resumeForMs: number;
  log: Logger;
  onPath?: (e: PathEvent) => void;
  /** When the first local connection asked for the link (for the time to the direct path). */
  startedAt: number;
}

/**
 * The client's end-to-end path (docs/p2p.md §9): the link to the agent, pinned to the agent's key
 * the gateway gave, on a relayed transport first, then — if the gateway allows it — moved onto a
 * direct TCP connection when a punch succeeds, back onto a fresh relay when that dies, and direct
 * again when a later punch succeeds. Every move is a link resume: the sessions see none of it.
 * Each path decision is reported (onPath, and to the gateway for its API and metrics).
 */
export class E2ePath {
  readonly #o: E2ePathInit;
  /** Relay and punch requests waiting for the gateway's answers (answer-queue.ts). */
  readonly #answers = new AnswerQueue<'relay' | 'punch', string>(MAX_WAITING);
  #stream: LinkStream | null = null;
  #path: PathName = 'relay';
  /** What the next attached transport is: set by whoever attaches it. */
  #attaching: PathName = 'relay';
  /** Why the direct transport went, while the link resumes onto a relay (for the report). */
  #lostDirect: string | null = null;
  #changes = 0;
  #failures = 0;
  #retry: NodeJS.Timeout | null = null;
  #rtt: NodeJS.Timeout | null = null;
  #punching = false;
  #closed = false;
  readonly #abort = new AbortController();

  constructor(o: E2ePathInit) {
    this.#o = o;
    const lines = new LineDecoder(8192);
    o.control.on('data', (chunk: Buffer) => {
      try {
        for (const line of lines.push(chunk)) this.#onControl(decodeE2e(GatewayToClient, line));
      } catch (err) {
        o.log.warn({ err: (err as Error).message }, 'dk connect: bad message from the gateway; control link closed');
        o.control.destroy();
      }
    });
    o.control.once('close', () => {
      this.#answers.failAll(new Error('the link to the gateway ended'));
      // The gateway ends the agent's side too: the end-to-end link goes with the control link.
      this.close();
    });
    o.control.resume();
  }

  get path(): PathName {
    return this.#path;
  }
  get changes(): number {
    return this.#changes;
  }
  get stream(): LinkStream | null {
    return this.#stream;
  }

  /** Opens the end-to-end link on a relay and presents the ticket; resolves with the link once the agent accepted it. */
  async open(): Promise<LinkStream> {
    const { grant, log } = this.#o;
    const stream = await connectLink({
      host: this.#o.gatewayHost, port: this.#o.gatewayPort, serverKey: Buffer.from(grant.agent_key, 'base64url'),
      dial: () => this.#relay(), resumeForMs: this.#o.resumeForMs, pingMs: E2E_PING_MS, deadMs: E2E_DEAD_MS,
    });
    stream.on('error', () => undefined);
    logResumeFailures(stream, log, 'end-to-end link');
    const ticketId = ticketIdOf(grant.ticket);
    stream.write(e2eLine({ ticket: grant.ticket, proof: ticketProof(this.#o.clientKey, stream.secrets.sessionId, ticketId) }));
    let answer: TicketAnswer;
    try {
      answer = decodeE2e(TicketAnswer, await readLine(stream, ANSWER_MS));
    } catch (e) {
      stream.destroy();
      throw new ConnectRefusedError('agent_no_answer', `the agent did not answer the ticket: ${(e as Error).message}`);
    }
    if (!answer.ok) {
      stream.destroy();
      throw new ConnectRefusedError(answer.code, `the agent refused the end-to-end link: ${answer.message}`);
    }
    // The control link ended meanwhile (close() found no link to end): this link must not outlive it.
    if (this.#closed) {
      stream.destroy();
      throw new ConnectRefusedError(CLIENT_CODES.LINK, 'the link to the gateway ended while the end-to-end link was opening');
    }
    this.#stream = stream;
    stream.on('attached', () => this.#onAttached());
    stream.on('detached', (why: string) => { if (this.#path === 'direct') this.#lostDirect = why; });
    stream.once('close', () => this.close());
    this.#report('relay', grant.direct ? 'path=relay reason="the link starts on the relay; trying a direct path"' : `path=relay reason=${JSON.stringify(`direct paths are off: ${grant.why ?? 'not allowed'}`)}`);
    if (grant.direct) this.#schedule(0);
    this.#rtt = setInterval(() => { if (stream.rttMs !== null) this.#send({ t: 'rtt', rtt_ms: stream.rttMs }); }, RTT_REPORT_MS);
    this.#rtt.unref();
    return stream;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    if (this.#rtt) clearInterval(this.#rtt);
    this.#abort.abort();
    this.#stream?.destroy();
  }

  #onAttached(): void {
    const kind = this.#attaching;
    this.#attaching = 'relay';
    if (kind === 'relay' && this.#path === 'direct') {
      const why = this.#lostDirect ?? 'the direct connection ended';
      this.#lostDirect = null;
      this.#report('relay', `path=relay reason=${JSON.stringify(`direct path lost (${why}); resumed on a fresh relay`)}`);
      this.#schedule(AFTER_LOSS_MS);
    }
  }

  #report(path: PathName, line: string, extra: Partial<ClientToGateway & { t: 'path' }> = {}): void {
    if (path !== this.#path) this.#changes++;
    this.#path = path;
    this.#o.onPath?.({ path, line, changes: this.#changes });
    const rtt = this.#stream?.rttMs;
    this.#send({ t: 'path', path, reason: line.slice(0, 1000), ...(rtt !== null && rtt !== undefined ? { rtt_ms: rtt } : {}), ...extra });
  }

  #send(m: ClientToGateway): void {
    const c = this.#o.control;
    if (!c.destroyed && c.writable) c.write(e2eLine(m));
  }

  #onControl(m: GatewayToClient): void {
    if (m.t === 'error') this.#answers.answer({ error: new Error(`the gateway: ${m.message}`) });
    else this.#answers.answer({ kind: m.t, value: m.t === 'relay' ? m.token : m.session });
  }

  #ask(t: 'relay' | 'punch'): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.#o.control.destroyed) return reject(new Error('the link to the gateway ended'));
      let queued: ReturnType<AnswerQueue<'relay' | 'punch', string>['push']> = null;
      const timer = setTimeout(() => queued?.giveUp(new Error(`no ${t} answer from the gateway within ${ANSWER_MS} ms`)), ANSWER_MS);
      timer.unref();
      queued = this.#answers.push({
        kind: t,
        settle: (r) => {
          clearTimeout(timer);
          if (r.ok) resolve(r.value);
          else reject(r.error);
        },
      });
      if (!queued) {
        clearTimeout(timer);
        // A gateway that has stopped answering: start over with a new link to it.
        this.#o.control.destroy();
        return reject(new Error(`the gateway left ${MAX_WAITING} requests unanswered`));
      }
      this.#send({ t });
    });
  }

  /** A fresh relayed transport: a token from the gateway, then a connection that joins it. */
  async #relay(): Promise<Socket> {
    const token = await this.#ask('relay');
    const s = connect({ host: this.#o.gatewayHost, port: this.#o.gatewayPort, noDelay: true });
    s.write(encodeRelayHeader(RelaySide.CLIENT, Buffer.from(token, 'hex')));
    this.#attaching = 'relay';
    // The gateway pairs within 15 s or not at all: a connection that cannot even form by then is given up.
    const timer = setTimeout(() => s.destroy(new Error(`no connection to the gateway's relay within ${ANSWER_MS} ms`)), ANSWER_MS);
    timer.unref();
    try {
      return await connected(s);
    } finally {
      clearTimeout(timer);
    }
  }

  #schedule(ms: number): void {
    if (this.#closed || this.#retry || this.#punching) return;
    this.#retry = setTimeout(() => {
      this.#retry = null;
      void this.#punchOnce();
    }, ms);
    this.#retry.unref();
  }

  async #punchOnce(): Promise<void> {
    const stream = this.#stream;
    if (this.#closed || !stream || this.#path === 'direct' || this.#punching) return;
    this.#punching = true;
    let next: number | null = null;
    try {
      const session = await this.#ask('punch');
      const result = await punchSession({ host: this.#o.gatewayHost, port: this.#o.gatewayPort, session, signal: this.#abort.signal });
      if (!result.ok) {
        this.#report('relay', `path=relay reason=${JSON.stringify(failureText(result))}`, { punch: 'failed' });
        next = this.#backoff();
        return;
      }
      if (this.#closed) {
        result.socket.destroy();
        return;
      }
      this.#attaching = 'direct';
      try {
        await migrateLink(stream, result.socket, { timeoutMs: 5_000 });
      } catch (err) {
        this.#attaching = 'relay';
        this.#report('relay', `path=relay reason=${JSON.stringify(`a direct connection formed (${result.candidate.host}:${result.candidate.port}) but the link could not move onto it: ${(err as Error).message}`)}`, { punch: 'failed' });
        next = this.#backoff();
        return;
      }
      this.#failures = 0;
      this.#report('direct', `${pathLine(result)} after_ms=${Math.round(performance.now() - this.#o.startedAt)}`, { punch: 'direct' });
    } catch (err) {
      if (this.#closed) return;
      this.#report('relay', `path=relay reason=${JSON.stringify(`no direct path: ${(err as Error).message}`)}`, { punch: 'failed' });
      next = this.#backoff();
    } finally {
      this.#punching = false;
      if (next !== null && !this.#closed) this.#schedule(next);
    }
  }

  #backoff(): number {
    return Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** this.#failures++);
  }
}
