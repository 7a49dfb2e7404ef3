import { randomInt } from 'node:crypto';
import type { Mux } from '../mux/mux.ts';
import type { AgentAllowlist } from './agent-allowlist.ts';
import { bytesToIp, Command, decodeScanReply, encodePortQuery, ScanFlag } from '../protocol/index.ts';

/** A connected, authenticated agent. */
export interface AgentLink {
  name: string;
  mux: Mux;
  remote: string;
  since: number;
  /** Static tunnels this agent published (remote ports). */
  exposes: Set<number>;
  /** Over the encrypted, resumable link (true) or the seed's plain TCP. */
  encrypted: boolean;
  /** EXPOSE requests being set up (listen() in progress), counted against max_exposes_per_agent. */
  exposesPending: number;
  /** What the agent said it will dial (ALLOWLIST), or why the gateway cannot tell. */
  allowlist: AgentAllowlist;
  /** Times this link resumed on a new TCP connection since the agent came online. */
  resumes: number;
  /** The agent's software version (AGENT_INFO), or null until it says (older agents never do). */
  version: string | null;
  /** The agent's static link key for end-to-end dk connect links (E2E), base64url, or null until it says. */
  e2eKey: string | null;
}

export interface ScanResult {
  hosts: string[];
  complete: boolean;
  truncated: boolean;
  refused: boolean;
}

interface PendingScan {
  link: AgentLink;
  hosts: string[];
  truncated: boolean;
  refused: boolean;
  resolve: (r: ScanResult) => void;
  timer: NodeJS.Timeout;
}

/** Live agent links by name; a newer link for a name replaces the older (SPEC §4). */
export class AgentRegistry {
  readonly #links = new Map<string, AgentLink>();
  readonly #scans = new Map<number, PendingScan>();
  /** PORT QUERYs awaiting their answer, per link (bounded by max_pending_scans at the gateway). */
  readonly #pendingByLink = new Map<AgentLink, number>();

  get(name: string): AgentLink | undefined {
    return this.#links.get(name);
  }
  list(): AgentLink[] {
    return [...this.#links.values()];
  }
  get size(): number {
    return this.#links.size;
  }

  /** Registers a link; returns the one it replaced. */
  add(link: AgentLink): AgentLink | undefined {
    const old = this.#links.get(link.name);
    this.#links.set(link.name, link);
    return old;
  }

  /** PORT QUERYs sent on `link` and not yet answered or timed out. */
  pendingScans(link: AgentLink): number {
    return this.#pendingByLink.get(link) ?? 0;
  }

  /** Removes `link` if it is still the current one for its name; its pending scans end incomplete. */
  remove(link: AgentLink): boolean {
    for (const [id, p] of this.#scans) if (p.link === link) this.#finish(id, false);
    if (this.#links.get(link.name) !== link) return false;
    this.#links.delete(link.name);
    return true;
  }

  /**
   * PORT QUERY (SPEC §4): asks the agent which LAN hosts have `port` open. Answers arrive as CMD 1
   * frames with our correlation id; the last is marked. On timeout, what arrived so far is
   * returned with complete=false.
   */
  scan(link: AgentLink, port: number, timeoutMs: number): Promise<ScanResult> {
    let id: number;
    do id = randomInt(1, 2 ** 32 - 1); while (this.#scans.has(id));
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#finish(id, false), timeoutMs);
      timer.unref();
      this.#scans.set(id, { link, hosts: [], truncated: false, refused: false, resolve, timer });
      this.#pendingByLink.set(link, this.pendingScans(link) + 1);
      link.mux.command(id, Command.PORT_QUERY, encodePortQuery(port));
    });
  }

  /**
   * Routes a PORT QUERY answer frame. Frames with unknown ids (late, after a timeout) are ignored,
   * and so are answers from another link than the one asked.
   */
  onScanReply(link: AgentLink, id: number, params: Buffer): void {
    const p = this.#scans.get(id);
    if (!p || p.link !== link) return;
    const r = decodeScanReply(params);
    for (const h of r.hosts) if (p.hosts.length < 65536) p.hosts.push(bytesToIp(h));
    p.truncated ||= (r.flags & ScanFlag.TRUNCATED) !== 0;
    p.refused ||= (r.flags & ScanFlag.REFUSED) !== 0;
    if (r.flags & ScanFlag.LAST) this.#finish(id, true);
  }

  #finish(id: number, complete: boolean): void {
    const p = this.#scans.get(id);
    if (!p) return;
    this.#scans.delete(id);
    const n = this.pendingScans(p.link) - 1;
    if (n > 0) this.#pendingByLink.set(p.link, n);
    else this.#pendingByLink.delete(p.link);
    clearTimeout(p.timer);
    p.resolve({ hosts: p.hosts, complete, truncated: p.truncated, refused: p.refused });
  }
}
