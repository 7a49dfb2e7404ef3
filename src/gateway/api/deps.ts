import type { GatewayConfig } from '../../config/gateway-config.ts';
import type { ScanResult } from '../agents.ts';
import type { E2eClient } from '../e2e-service.ts';
import type { AuthGuard } from '../auth-guard.ts';
import type { Grant } from '../grants.ts';
import type { AccessResult } from '../grant-service.ts';
import type { LiveSession } from '../session-table.ts';
import type { GatewayMetrics } from '../metrics.ts';
import type { AuditRepo, UserRepo } from '../stores.ts';
import type { User } from '../users.ts';
import type { RendezvousApi } from './rendezvous-routes.ts';
import type { TrafficSample } from '../traffic-series.ts';

export interface BackendView {
  name: string;
  online: boolean;
  since: number | null;
  remote: string | null;
  encrypted: boolean | null;
  features: number | null;
  rttMs: number | null;
  sessions: number;
  exposes: { port: number; backend: string; target: string; allow: readonly string[] }[];
  /** The agent's allowlist as it told it (CIDR:PORTS); null when offline or not told. */
  allowlist: string[] | null;
  /** Link resumes since the agent came online (0 when offline or over plain TCP). */
  linkResumes: number;
  /** The agent's version (AGENT_INFO), null when offline or an older agent. */
  version: string | null;
}

/** A live session as the API shows it: the table's record without its live objects, with byte counts. */
export type SessionView = Omit<LiveSession, 'session' | 'client'> & { bytesUp: number; bytesDown: number };

/**
 * What the management API needs from the gateway, and nothing more: the API is tested against a
 * fake of this (test/api/api-fakes.test.ts), without sockets or SQLite.
 */
export interface ApiDeps {
  readonly config: Pick<GatewayConfig, 'trusted_proxies' | 'max_body'>;
  readonly metrics: Pick<GatewayMetrics, 'apiRequests' | 'apiAuthFailures' | 'registry'>;
  readonly auth: Pick<AuthGuard, 'blocked' | 'failed'>;
  readonly users: UserRepo;
  readonly audit: Pick<AuditRepo, 'recent'>;
  health(): { agents_online: number; grants: number; sessions: number };
  backends(): BackendView[];
  scan(backend: string, port: number): Promise<ScanResult>;
  grants(): Grant[];
  activeSessions(grantId: string): number;
  requestAccess(user: User, clientIp: string, backend: string, host: string, port: number): Promise<AccessResult>;
  revokeGrant(id: string, by: string): Grant;
  sessions(): SessionView[];
  killSession(key: string): SessionView;
  /** The RustDesk rendezvous, when the gateway runs one. */
  rendezvous?(): RendezvousApi | null;
  /** Writes an audit event for an admin action. */
  auditWrite?(e: { event: string; user: string; clientIp: string; target: string }): void;
  /** Throughput and session count over the last hour, oldest first (the dashboard's charts). */
  traffic?(): TrafficSample[];
  /** Agent links and end-to-end dk connect clients (GET /api/v1/links). */
  links?(): LinksView;
}

export interface AgentLinkView {
  backend: string;
  remote: string;
  since: number;
  encrypted: boolean;
  rttMs: number | null;
  resumes: number;
  /** Whether it carries end-to-end dk connect links (it told its key). */
  e2e: boolean;
}

export interface LinksView {
  /** The gateway's p2p switch. */
  p2p: 'auto' | 'relay' | 'off';
  agents: AgentLinkView[];
  clients: E2eClient[];
}
