import { Counter, Gauge, type Registry } from 'prom-client';

/** Prometheus metrics of the rendezvous and relay, in the gateway's registry. */
export class RendezvousMetrics {
  readonly registrations: Counter<'kind' | 'transport' | 'result'>;
  readonly peersOnline: Gauge;
  readonly peersKnown: Gauge;
  readonly punches: Counter<'outcome'>;
  readonly relayRequests: Counter<'outcome'>;
  readonly dropped: Counter<'reason'>;
  readonly relayPairs: Counter;
  readonly relayBytes: Counter;
  readonly relayRefused: Counter<'reason'>;
  readonly relayActive: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.registrations = new Counter({ name: 'dk_rendezvous_registrations_total', help: 'RegisterPeer (kind=peer) and RegisterPk (kind=pk) handled, by transport and result', labelNames: ['kind', 'transport', 'result'] as const, registers });
    this.peersOnline = new Gauge({ name: 'dk_rendezvous_peers_online', help: 'Peers registered within the last 30 s', registers });
    this.peersKnown = new Gauge({ name: 'dk_rendezvous_peers_in_memory', help: 'Peers held in memory', registers });
    this.punches = new Counter({ name: 'dk_rendezvous_punch_total', help: 'Punch requests and answers by outcome (forwarded, forwarded_udp, forwarded_local, answered, answered_udp, answered_local, id_not_exist, offline, license_mismatch, requester_gone)', labelNames: ['outcome'] as const, registers });
    this.relayRequests = new Counter({ name: 'dk_rendezvous_relay_requests_total', help: 'RequestRelay / RelayResponse through the rendezvous by outcome', labelNames: ['outcome'] as const, registers });
    this.dropped = new Counter({ name: 'dk_rendezvous_dropped_total', help: 'Datagrams, frames and connections dropped or closed without an answer, by reason', labelNames: ['reason'] as const, registers });
    this.relayPairs = new Counter({ name: 'dk_relay_pairs_total', help: 'Relay connections paired', registers });
    this.relayBytes = new Counter({ name: 'dk_relay_bytes_total', help: 'Bytes relayed (both directions) by pairs that ended', registers });
    this.relayRefused = new Counter({ name: 'dk_relay_refused_total', help: 'Relay connections closed unpaired, by reason', labelNames: ['reason'] as const, registers });
    this.relayActive = new Gauge({ name: 'dk_relay_pairs_active', help: 'Relay pairs open now', registers });
  }
}
