import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { BackendLabels } from './backend-labels.ts';

/**
 * Prometheus metrics of one gateway (its own registry, so tests can run several gateways).
 * A `backend` label takes only the values `backends` allows (backend-labels.ts): the configured
 * backends, at most MAX_BACKEND_LABELS of them; the gateway allows them as it learns them.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly backends = new BackendLabels();
  readonly agentsOnline = new Gauge({ name: 'dk_agents_online', help: 'Agents with a live link', registers: [this.registry] });
  readonly sessionsActive = new Gauge({ name: 'dk_sessions_active', help: 'Tunnelled TCP sessions open now', registers: [this.registry] });
  readonly sessionsTotal = new Counter({ name: 'dk_sessions_total', help: 'Tunnelled sessions opened', labelNames: ['kind', 'backend'] as const, registers: [this.registry] });
  readonly connectionsRefused = new Counter({ name: 'dk_connections_refused_total', help: 'Connections closed without a session', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly sessionsRefused = new Counter({ name: 'dk_sessions_refused_total', help: 'OPN frames refused with CLS (session_cap: the link holds max_sessions_per_link; not_accepted: an agent sent OPN)', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly limitsHit = new Counter({ name: 'dk_limits_hit_total', help: 'Requests refused because a per-agent limit was reached (max_exposes_per_agent, max_pending_scans)', labelNames: ['limit'] as const, registers: [this.registry] });
  readonly bytes = new Counter({ name: 'dk_bytes_total', help: 'Tunnelled bytes, counted when a session ends', labelNames: ['direction', 'backend'] as const, registers: [this.registry] });
  readonly grantsActive = new Gauge({ name: 'dk_grants_active', help: 'Grants in force', registers: [this.registry] });
  readonly accessPortsOpen = new Gauge({ name: 'dk_access_ports_open', help: 'Access ports listening', registers: [this.registry] });
  readonly agentAuthFailures = new Counter({ name: 'dk_agent_auth_failures_total', help: 'Agent handshakes refused', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly apiAuthFailures = new Counter({ name: 'dk_api_auth_failures_total', help: 'API requests with bad credentials', registers: [this.registry] });
  readonly authBlocked = new Counter({ name: 'dk_auth_blocked_total', help: 'Authentications refused unchecked because the source address or the user name failed too often', labelNames: ['by'] as const, registers: [this.registry] });
  readonly preAuthRefused = new Counter({ name: 'dk_preauth_refused_total', help: 'serv_port connections closed before authenticating: too many pending overall, from one address, or past the handshake deadline', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly apiRequests = new Counter({ name: 'dk_api_requests_total', help: 'API requests', labelNames: ['method', 'status'] as const, registers: [this.registry] });
  readonly backendOnline = new Gauge({ name: 'dk_backend_online', help: 'Whether the backend has an agent online (1) or not (0)', labelNames: ['backend'] as const, registers: [this.registry] });
  /** One observation per measurement: each PONG that answers the gateway's PING on an agent link. */
  readonly p2pPunches = new Counter({ name: 'dk_p2p_punches_total', help: 'Direct-path attempts of dk connect clients, by outcome (direct: the link moved onto a direct connection; failed: it stayed on the relay)', labelNames: ['outcome'] as const, registers: [this.registry] });
  readonly p2pPathChanges = new Counter({ name: 'dk_p2p_path_changes_total', help: 'Path changes of end-to-end dk connect links, by the path taken', labelNames: ['path'] as const, registers: [this.registry] });
  readonly p2pRelayPairs = new Counter({ name: 'dk_p2p_relay_pairs_total', help: 'Relayed transports paired for end-to-end dk connect links', registers: [this.registry] });
  readonly p2pRelayBytes = new Counter({ name: 'dk_p2p_relay_bytes_total', help: 'Bytes relayed for end-to-end dk connect links (ciphertext), counted when a relayed transport ends', registers: [this.registry] });
  readonly p2pClients = new Gauge({ name: 'dk_p2p_clients', help: 'End-to-end dk connect clients, by current path', labelNames: ['path'] as const, registers: [this.registry] });
  readonly linkRtt = new Histogram({ name: 'dk_link_rtt_seconds', help: 'Agent link round-trip time, one observation per PING/PONG measurement', labelNames: ['backend'] as const, buckets: [0.001, 0.005, 0.02, 0.05, 0.1, 0.3, 1, 3], registers: [this.registry] });
  readonly linkResumes = new Counter({ name: 'dk_link_resumes_total', help: 'Encrypted link sessions resumed on a new connection (agent links by backend; dk connect links as kind="connect")', labelNames: ['kind', 'backend'] as const, registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'dk_' });
  }
}
