import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Socket } from 'node:net';
import type { LinkStream } from '../link/stream.ts';
import { Coordinator } from '../p2p/coordinator.ts';
import {
  AgentToGateway, ClientToGateway, decodeE2e, e2eLine, type E2eGrant, type E2eRequest, type GatewayToAgent, type GatewayToClient,
} from '../p2p/e2e-messages.ts';
import { E2E_KEEP_MS } from '../p2p/e2e-timing.ts';
import { LineDecoder } from '../p2p/lines.ts';
import { signTicket, type Ed25519Pair } from '../p2p/ticket.ts';
import { Command, Feature } from '../protocol/index.ts';
import type { Logger } from '../util/log.ts';
import type { AgentLink } from './agents.ts';
import { E2eRelay } from './e2e-relay.ts';
import type { GatewayMetrics } from './metrics.ts';

/** The gateway-wide switch: `auto` end to end with direct paths, `relay` end to end relayed only, `off` through the gateway as before. */
export type GatewayP2p = 'auto' | 'relay' | 'off';

const TICKET_TTL_MS = 60_000;
/** Path decisions kept per client for the API. */
const MAX_CHANGES = 16;
/** Requests a client may make per minute on its control link (relays and punches each). */
const MAX_RELAYS_PER_MIN = 30;
const MAX_PUNCHES_PER_MIN = 12;
const MAX_LINES_PER_MIN = 600;
/** Answers queued on a control link whose client does not read them, at most. */
const MAX_CONTROL_QUEUE = 32 * 1024;
const PUNCH_SESSION_TTL_MS = 20_000;
const MAX_PUNCH_SESSIONS = 1024;
/** How often a client's permission is checked again while its end-to-end link lives (and the agent told to keep it). */
const RECHECK_MS = E2E_KEEP_MS;
const KEY_WAIT_STEPS = 20;
const KEY_WAIT_STEP_MS = 100;

export interface PathChange {
  at: number;
  path: 'relay' | 'direct';
  reason: string;
}

/** One end-to-end dk connect client, as GET /api/v1/links shows it. */
export interface E2eClient {
  id: string;
  user: string;
  backend: string;
  target: string;
  client_ip: string;
  since: number;
  /** `connecting` until the client reports its first path; `gateway` for a client on the gateway's path (not end to end). */
  path: 'connecting' | 'relay' | 'direct' | 'gateway';
  rtt_ms: number | null;
  /** The last MAX_CHANGES path decisions the client reported, each with its reason: a change of path or not (a failed punch keeps the relay). */
  changes: PathChange[];
  /** Times the path changed (relay ⇄ direct); the first path is not a change. */
  path_changes: number;
  relays: number;
  punches: { direct: number; failed: number };
}

export interface E2eServiceInit {
  p2p: GatewayP2p;
  /** max_sessions_per_user, named in each ticket: the agent holds a user's end-to-end sessions to it. */
  maxSessionsPerUser: number;
  ticketKey: Ed25519Pair;
  metrics: GatewayMetrics;
  log: Logger;
}

/**
 * The gateway's part of end-to-end dk connect links (docs/p2p.md §9): it authorizes a client once
 * (ConnectService), gives it the agent's key and a signed ticket, then, on the client's link,
 * pairs relayed transports and coordinates punches on request, and keeps what the client reports
 * about its path for the API and the metrics. It never holds a key of the end-to-end link.
 */
export class E2eService {
  readonly relay: E2eRelay;
  readonly coordinator: Coordinator;
  readonly clients = new Map<string, E2eClient>();
  readonly #init: E2eServiceInit;
  /** Punch sessions the gateway made, each with its hellos so far: two sides get in, once each. */
  readonly #punchSessions = new Map<string, { timer: NodeJS.Timeout; joins: number }>();

  constructor(init: E2eServiceInit) {
    this.#init = init;
    const m = init.metrics;
    this.relay = new E2eRelay({
      onPaired: () => m.p2pRelayPairs.inc(),
      onEnd: (_user, _reason, bytes) => m.p2pRelayBytes.inc(bytes),
    });
    this.coordinator = new Coordinator({ host: '127.0.0.1', maxConnections: 2 * MAX_PUNCH_SESSIONS, admit: (s) => this.#admit(s) });
  }

  get mode(): GatewayP2p {
    return this.#init.p2p;
  }

  /** An agent link negotiated its extensions: one that speaks E2E learns the ticket key. */
  onAgentHello(link: AgentLink): void {
    if (!this.#usable(link)) return;
    this.#toAgent(link, { t: 'ticket_key', key: this.#init.ticketKey.publicRaw.toString('base64url'), now: Date.now() });
  }

  /** An E2E command from an agent; a malformed one is a protocol error of its link. */
  onAgentCommand(link: AgentLink, params: Buffer): void {
    if (!this.#usable(link)) return;
    const msg = decodeE2e(AgentToGateway, params.toString('utf8'));
    link.e2eKey = msg.key;
  }

  /**
   * What a client that asked for the end-to-end path gets: the agent's key and a ticket, or why it
   * goes through the gateway instead.
   */
  async offer(o: { user: string; backend: string; host: string; port: number; req: E2eRequest; link: AgentLink }): Promise<{ grant: E2eGrant; ticketId: string } | { why: string }> {
    if (this.#init.p2p === 'off') return { why: 'the gateway has end-to-end paths off (p2p: off)' };
    if (!o.link.encrypted) return { why: `backend "${o.backend}"'s agent uses the plain protocol` };
    // An agent that just came online says HELLO, then its key: give it a moment.
    const settled = (): boolean => o.link.mux.closed || (o.link.mux.peerHello !== null && (!(o.link.mux.features & Feature.E2E) || o.link.e2eKey !== null));
    for (let i = 0; i < KEY_WAIT_STEPS && !settled(); i++) await sleep(KEY_WAIT_STEP_MS);
    if (!(o.link.mux.features & Feature.E2E)) return { why: `backend "${o.backend}"'s agent does not speak end-to-end links (older agent)` };
    if (!o.link.e2eKey) return { why: `backend "${o.backend}"'s agent has not told its link key` };
    const now = Date.now();
    const id = randomBytes(16).toString('hex');
    const ticket = signTicket(this.#init.ticketKey.privateKey, {
      v: 1, id, user: o.user, backend: o.backend, client: o.req.client_key, targets: [{ host: o.host, port: o.port }], iat: now, exp: now + TICKET_TTL_MS,
      max_sessions: this.#init.maxSessionsPerUser,
    });
    const direct = this.#init.p2p === 'auto' && o.req.p2p === 'auto';
    const why = this.#init.p2p !== 'auto' ? 'the gateway allows relayed paths only (p2p: relay)' : o.req.p2p === 'off' ? 'this client asked for no direct path (--p2p off)' : undefined;
    return { grant: { agent_key: o.link.e2eKey, ticket, direct, ...(why ? { why } : {}) }, ticketId: id };
  }

  /**
   * Serves an end-to-end client's control link after the connect reply: relay and punch requests,
   * path reports. `alive()` says whether the client may still use the backend (token, permission,
   * agent online); checked on every request. When the control link ends, the agent ends the
   * end-to-end link of this ticket.
   */
  serve(stream: LinkStream, o: { id: string; user: string; backend: string; target: string; ip: string; ticketId: string; direct: boolean; agent: () => AgentLink | undefined; allowed: () => boolean }): void {
    const { metrics, log } = this.#init;
    const client: E2eClient = {
      id: o.id, user: o.user, backend: o.backend, target: o.target, client_ip: o.ip, since: Date.now(), path: 'connecting', rtt_ms: null, changes: [], path_changes: 0, relays: 0, punches: { direct: 0, failed: 0 },
    };
    this.clients.set(o.id, client);
    const send = (m: GatewayToClient): void => {
      if (stream.destroyed) return;
      // A client that stops reading its answers has its control link (and so its end-to-end link) closed, not its answers queued without end.
      if (stream.writableLength > MAX_CONTROL_QUEUE) {
        log.info({ client: o.ip, queued: stream.writableLength }, 'dk connect control link: the client does not read its answers; closed');
        stream.destroy();
        return;
      }
      stream.write(e2eLine(m));
    };
    const lines = new LineDecoder(8192);
    const window = { start: Date.now(), relays: 0, punches: 0, lines: 0 };
    /** Punches coordinated for this client whose outcome it has not reported: the outcomes it may report. */
    let owed = 0;
    const onLine = (line: string): void => {
      if (Date.now() - window.start > 60_000) Object.assign(window, { start: Date.now(), relays: 0, punches: 0, lines: 0 });
      // dk connect sends a few lines a minute (an RTT every 5 s, a report per path decision).
      if (++window.lines > MAX_LINES_PER_MIN) throw new Error(`more than ${MAX_LINES_PER_MIN} control messages in a minute`);
      const msg = decodeE2e(ClientToGateway, line);
      if (msg.t === 'rtt') {
        client.rtt_ms = msg.rtt_ms;
        return;
      }
      if (msg.t === 'path') {
        if (msg.punch && owed > 0) {
          owed--;
          client.punches[msg.punch]++;
          metrics.p2pPunches.inc({ outcome: msg.punch });
        }
        if (msg.rtt_ms !== undefined) client.rtt_ms = msg.rtt_ms;
        if (msg.path !== client.path) {
          if (client.path !== 'connecting') {
            metrics.p2pClients.dec({ path: client.path });
            client.path_changes++;
            metrics.p2pPathChanges.inc({ path: msg.path });
          }
          metrics.p2pClients.inc({ path: msg.path });
          client.path = msg.path;
        }
        client.changes.push({ at: Date.now(), path: msg.path, reason: msg.reason });
        if (client.changes.length > MAX_CHANGES) client.changes.shift();
        return;
      }
      // Every request checks again that the token still names a user who may reach the target.
      if (!o.allowed()) return send({ t: 'error', message: 'this client is no longer allowed to reach the target' });
      const link = o.agent();
      if (!link) return send({ t: 'error', message: `backend "${o.backend}" has no agent online` });
      if (msg.t === 'relay') {
        if (++window.relays > MAX_RELAYS_PER_MIN) return send({ t: 'error', message: `more than ${MAX_RELAYS_PER_MIN} relay requests in a minute` });
        const token = this.relay.expect(o.user);
        if (!token) return send({ t: 'error', message: 'the gateway holds as many relays as it may (for this user or in total)' });
        client.relays++;
        this.#toAgent(link, { t: 'relay', token: token.toString('hex') });
        return send({ t: 'relay', token: token.toString('hex') });
      }
      // punch
      if (!o.direct) return send({ t: 'error', message: 'direct paths are off for this client' });
      if (++window.punches > MAX_PUNCHES_PER_MIN) return send({ t: 'error', message: `more than ${MAX_PUNCHES_PER_MIN} punch requests in a minute` });
      if (this.#punchSessions.size >= MAX_PUNCH_SESSIONS) return send({ t: 'error', message: 'the gateway is coordinating as many punches as it may' });
      const session = randomBytes(16).toString('hex');
      const timer = setTimeout(() => this.#punchSessions.delete(session), PUNCH_SESSION_TTL_MS);
      timer.unref();
      this.#punchSessions.set(session, { timer, joins: 0 });
      this.#toAgent(link, { t: 'punch', session });
      owed = Math.min(owed + 1, MAX_PUNCHES_PER_MIN);
      send({ t: 'punch', session });
    };
    stream.on('data', (chunk: Buffer) => {
      try {
        for (const line of lines.push(chunk)) onLine(line);
      } catch (err) {
        log.info({ client: o.ip, err: (err as Error).message }, 'dk connect control link: bad message; closed');
        stream.destroy();
      }
    });
    // A token revoked or a permission taken away ends the control link, and so the end-to-end link.
    const recheck = setInterval(() => {
      if (o.allowed()) {
        const link = o.agent();
        if (link) this.#toAgent(link, { t: 'keep', ticket: o.ticketId });
        return;
      }
      log.info({ client: o.ip, user: o.user, backend: o.backend }, 'dk connect: end-to-end client no longer allowed; its link ends');
      stream.destroy();
    }, RECHECK_MS);
    recheck.unref();
    stream.once('close', () => {
      clearInterval(recheck);
      this.clients.delete(o.id);
      if (client.path !== 'connecting') metrics.p2pClients.dec({ path: client.path });
      const link = o.agent();
      if (link) this.#toAgent(link, { t: 'end', ticket: o.ticketId });
    });
    stream.resume();
  }

  /** A connection to the punch coordinator on serv_port; `admitted` once its hello names a session of ours. */
  coord(socket: Socket, rest: Buffer, admitted: () => void): void {
    this.coordinator.handle(socket, rest, admitted);
  }

  close(): void {
    this.relay.close();
    void this.coordinator.close();
    for (const p of this.#punchSessions.values()) clearTimeout(p.timer);
    this.#punchSessions.clear();
  }

  /** A hello for `session`: the client's and the agent's get in; any further one does not. */
  #admit(session: string): boolean {
    const p = this.#punchSessions.get(session);
    if (!p || p.joins >= 2) return false;
    p.joins++;
    return true;
  }

  #usable(link: AgentLink): boolean {
    return link.encrypted && (link.mux.features & Feature.E2E) !== 0;
  }

  #toAgent(link: AgentLink, m: GatewayToAgent): void {
    if (!link.mux.closed) link.mux.command(0, Command.E2E, Buffer.from(JSON.stringify(m), 'utf8'));
  }
}
