import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { KeyObject } from 'node:crypto';
import { ReplayCache } from '../auth/replay-cache.ts';
import { readLine } from '../connect/protocol.ts';
import type { KeyPair } from '../link/crypto.ts';
import { LinkServer } from '../link/server.ts';
import type { LinkStream } from '../link/stream.ts';
import { Mux } from '../mux/mux.ts';
import type { MuxSession } from '../mux/session.ts';
import { decodeE2e, e2eLine, GatewayToAgent, TicketLine, type TicketAnswer } from '../p2p/e2e-messages.ts';
import { E2E_DEAD_MS, E2E_DETACH_MS, E2E_LEASE_MS, E2E_PING_MS } from '../p2p/e2e-timing.ts';
import { punchSession } from '../p2p/punch-session.ts';
import { failureText } from '../p2p/reason.ts';
import { encodeRelayHeader, RelaySide } from '../p2p/relay-header.ts';
import { checkTicketProof, ed25519Public, verifyTicket, type TicketClaims } from '../p2p/ticket.ts';
import { Feature } from '../protocol/index.ts';
import { KeyCount } from '../util/key-count.ts';
import type { Logger } from '../util/log.ts';

/** End-to-end links the agent carries at once, and per user. */
const MAX_E2E_LINKS = 1024;
const MAX_E2E_LINKS_PER_USER = 64;
const TICKET_LINE_MS = 10_000;
/** Relay joins and punches running at once (each is a socket or a few). */
const MAX_JOINS = 256;
/** A ticket issued this far in the future (clock steps) is refused. */
const CLOCK_SLACK_MS = 30_000;
const JOIN_TIMEOUT_MS = 15_000;

export interface E2eEndpointInit {
  name: string;
  key: KeyPair;
  gatewayHost: string;
  gatewayPort: number;
  log: Logger;
  window: number;
  windowMax: number;
  maxSessions: number;
  /** Opens a mux session's target, after the ticket's own check: the agent's allowlist check and dial. */
  open: (session: MuxSession, port: number, host: string) => void;
}

interface Live {
  stream: LinkStream;
  claims: TicketClaims;
  /** When the gateway last said to keep it (or it opened). */
  keptAt: number;
  mux: Mux | null;
}

/**
 * The agent's end of end-to-end dk connect links (docs/p2p.md §9). It runs a link server with the
 * agent's own static key on transports the gateway arranges — relayed ones it joins on request,
 * direct ones it punches — and, before carrying anything, checks the client's ticket: signed by the
 * gateway's ticket key, for this backend, not expired on the gateway's clock, used once, and proved
 * by the client's key over this session's id. Every session the client opens must be one of the
 * ticket's targets and pass the agent's own allowlist (`open`).
 */
export class E2eEndpoint {
  readonly #init: E2eEndpointInit;
  readonly #server: LinkServer<Duplex>;
  #ticketKey: KeyObject | null = null;
  /** Gateway clock minus ours, from the ticket_key message. */
  #offsetMs = 0;
  readonly #used = new ReplayCache(10 * 60_000, 100_000);
  /**
   * Tickets the gateway ended before their link was opened here (the client's control link went
   * first): refused when presented, or the link would live with nothing left to end it.
   */
  readonly #ended = new ReplayCache(10 * 60_000, 100_000);
  readonly #live = new Map<string, Live>();
  readonly #perUser = new KeyCount();
  readonly #joins = new Set<Socket>();
  readonly #aborts = new Set<AbortController>();
  readonly #leases: NodeJS.Timeout;
  /** Tickets and sessions refused, and keeps of live links (tests). */
  readonly counts = { refused: 0, kept: 0 };
  lastRefusal: string | null = null;

  constructor(init: E2eEndpointInit) {
    this.#init = init;
    this.#server = new LinkServer<Duplex>({
      key: init.key,
      detachTimeoutMs: E2E_DETACH_MS,
      pingMs: E2E_PING_MS,
      deadMs: E2E_DEAD_MS,
      maxSessions: MAX_E2E_LINKS,
      onStream: (stream) => void this.#onStream(stream),
      onError: (err) => init.log.debug({ err: err.message }, 'end-to-end link handshake failed'),
    });
    this.#leases = setInterval(() => this.#expireLeases(), E2E_LEASE_MS / 6);
    this.#leases.unref();
  }

  /** The static link key's public half, base64url: what the gateway gives clients to pin. */
  get publicKey(): string {
    return this.#init.key.publicRaw.toString('base64url');
  }

  get links(): number {
    return this.#live.size;
  }

  /** An E2E command from the gateway; throws P2pProtocolError on a malformed one. */
  onCommand(params: Buffer): void {
    const msg = decodeE2e(GatewayToAgent, params.toString('utf8'));
    const { log } = this.#init;
    if (msg.t === 'ticket_key') {
      this.#ticketKey = ed25519Public(Buffer.from(msg.key, 'base64url'));
      this.#offsetMs = msg.now - Date.now();
    } else if (msg.t === 'relay') {
      this.#joinRelay(Buffer.from(msg.token, 'hex'));
    } else if (msg.t === 'punch') {
      void this.#punch(msg.session).catch((err: Error) => log.info({ err: err.message }, 'end-to-end punch failed'));
    } else if (msg.t === 'keep') {
      const live = this.#live.get(msg.ticket);
      if (live) {
        live.keptAt = Date.now();
        this.counts.kept++;
      }
    } else {
      const live = this.#live.get(msg.ticket);
      if (live) {
        log.info({ user: live.claims.user }, 'the gateway ended an end-to-end link (client gone or no longer allowed)');
        live.stream.destroy();
      } else {
        this.#ended.check(Buffer.from(msg.ticket, 'hex'));
      }
    }
  }

  close(): void {
    clearInterval(this.#leases);
    for (const a of this.#aborts) a.abort();
    for (const s of this.#joins) s.destroy();
    this.#server.close();
  }

  /** Ends the links the gateway has not said to keep for E2E_LEASE_MS (its "end" may have been lost). */
  #expireLeases(): void {
    const now = Date.now();
    for (const live of this.#live.values()) {
      if (now - live.keptAt <= E2E_LEASE_MS) continue;
      this.#init.log.info({ user: live.claims.user }, 'the gateway has not kept an end-to-end link alive; it ends');
      live.stream.destroy();
    }
  }

  #joinRelay(token: Buffer): void {
    if (this.#joins.size >= MAX_JOINS) return;
    const s = connect({ host: this.#init.gatewayHost, port: this.#init.gatewayPort, noDelay: true });
    this.#joins.add(s);
    s.on('error', () => undefined);
    // The gateway keeps a relay token 15 s: a join that has not connected by then is useless.
    const timer = setTimeout(() => s.destroy(), JOIN_TIMEOUT_MS);
    timer.unref();
    s.once('connect', () => {
      clearTimeout(timer);
      this.#joins.delete(s);
      s.write(encodeRelayHeader(RelaySide.AGENT, token));
      void this.#server.handle(s, Buffer.alloc(0));
    });
    s.once('close', () => {
      clearTimeout(timer);
      this.#joins.delete(s);
    });
  }

  async #punch(session: string): Promise<void> {
    if (this.#aborts.size >= MAX_JOINS) return;
    const abort = new AbortController();
    this.#aborts.add(abort);
    try {
      const result = await punchSession({ host: this.#init.gatewayHost, port: this.#init.gatewayPort, session, signal: abort.signal });
      if (!result.ok) {
        this.#init.log.info({ why: failureText(result) }, 'end-to-end punch: no direct path');
        return;
      }
      // The client resumes its link on this connection; the link server checks that resume.
      void this.#server.handle(result.socket, Buffer.alloc(0));
    } finally {
      this.#aborts.delete(abort);
    }
  }

  async #onStream(stream: LinkStream): Promise<void> {
    const { log } = this.#init;
    stream.on('error', () => undefined);
    const answer = (a: TicketAnswer): void => {
      if (a.ok) stream.write(e2eLine(a));
      else {
        this.counts.refused++;
        this.lastRefusal = `${a.code}: ${a.message}`;
        log.warn({ code: a.code, why: a.message }, 'end-to-end link refused');
        stream.end(e2eLine(a));
        setTimeout(() => stream.destroy(), 2000).unref();
      }
    };
    let claims: TicketClaims;
    try {
      const line = decodeE2e(TicketLine, await readLine(stream, TICKET_LINE_MS));
      if (!this.#ticketKey) return answer({ ok: false, code: 'not_ready', message: 'the agent has not learnt the gateway\'s ticket key yet' });
      claims = verifyTicket(this.#ticketKey, line.ticket);
      const now = Date.now() + this.#offsetMs;
      if (claims.backend !== this.#init.name) return answer({ ok: false, code: 'wrong_backend', message: `the ticket is for backend "${claims.backend}"` });
      if (claims.exp <= now) return answer({ ok: false, code: 'ticket_expired', message: `the ticket expired ${Math.round((now - claims.exp) / 1000)} s ago` });
      if (claims.iat > now + CLOCK_SLACK_MS) return answer({ ok: false, code: 'ticket_future', message: 'the ticket is from the future' });
      if (!checkTicketProof(claims, stream.secrets.sessionId, line.proof)) return answer({ ok: false, code: 'ticket_not_yours', message: 'the client does not hold the key the ticket names' });
      if (this.#ended.has(Buffer.from(claims.id, 'hex'))) return answer({ ok: false, code: 'ticket_ended', message: 'the gateway ended this ticket (its client\'s link to the gateway is gone)' });
      if (!this.#used.check(Buffer.from(claims.id, 'hex'))) return answer({ ok: false, code: 'ticket_used', message: 'the ticket was used already' });
    } catch (err) {
      return answer({ ok: false, code: 'bad_ticket', message: (err as Error).message.slice(0, 400) });
    }
    if (!this.#perUser.take(claims.user, MAX_E2E_LINKS_PER_USER)) return answer({ ok: false, code: 'too_many_links', message: `user "${claims.user}" has ${MAX_E2E_LINKS_PER_USER} end-to-end links to this agent` });
    const live: Live = { stream, claims, keptAt: Date.now(), mux: null };
    this.#live.set(claims.id, live);
    stream.once('close', () => {
      this.#live.delete(claims.id);
      this.#perUser.give(claims.user);
    });
    answer({ ok: true });
    log.info({ user: claims.user, target: claims.targets.map((t) => `${t.host}:${t.port}`).join(',') }, 'end-to-end link open');
    const mux: Mux = new Mux(stream, {
      role: 'agent',
      window: this.#init.window,
      windowMax: this.#init.windowMax,
      features: Feature.FLOW | Feature.PONG,
      keepaliveMs: 0,
      deadAfterMs: 0,
      maxSessions: this.#init.maxSessions,
      onOpen: (session, port, host) => {
        if (!claims.targets.some((t) => t.host === host && t.port === port)) {
          this.counts.refused++;
          this.lastRefusal = `target ${host}:${port} is not in the ticket`;
          log.warn({ user: claims.user, target: `${host}:${port}` }, 'end-to-end session for a target outside its ticket; refused');
          session.close();
          return;
        }
        const over = this.#overCap(claims);
        if (over) {
          this.counts.refused++;
          this.lastRefusal = over;
          log.warn({ user: claims.user, target: `${host}:${port}` }, `end-to-end session refused: ${over}`);
          session.close();
          return;
        }
        // The gateway sees no session of an end-to-end link: the agent's log is where each one shows.
        log.info({ user: claims.user, target: `${host}:${port}` }, 'end-to-end session');
        this.#init.open(session, port, host);
      },
      onClose: () => stream.destroy(),
    });
    live.mux = mux;
    stream.resume(); // readLine paused it
  }

  /**
   * Why a new session of `claims`' user (already counted in its link's mux) is over a cap, if it
   * is: the user's sessions on all its end-to-end links (the ticket's max_sessions), or all
   * end-to-end sessions (the agent's max_sessions, as its gateway link has). Each link's mux alone
   * caps only its own.
   */
  #overCap(claims: TicketClaims): string | null {
    let all = 0;
    let user = 0;
    for (const l of this.#live.values()) {
      const n = l.mux?.sessions.size ?? 0;
      all += n;
      if (l.claims.user === claims.user) user += n;
    }
    if (claims.max_sessions !== undefined && user > claims.max_sessions) return `user "${claims.user}" has ${claims.max_sessions} end-to-end sessions open (the gateway's max_sessions_per_user)`;
    if (all > this.#init.maxSessions) return `${this.#init.maxSessions} end-to-end sessions are open (max_sessions)`;
    return null;
  }
}
