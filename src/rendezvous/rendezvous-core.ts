import { isIP } from 'node:net';
import { encodeAddrMangle, decodeAddrMangle } from './addr-mangle.ts';
import type { RendezvousMessage } from './gen/rendezvous_pb.ts';
import { NatType, PunchHoleResponse_Failure, RegisterPkResponse_Result } from './gen/rendezvous_pb.ts';
import type { IpBlocker } from './ip-blocker.ts';
import { signIdPk, type ServerKeyPair } from './keys.ts';
import { encodeRendezvous } from './messages.ts';
import { Peer, type PeerRoute, type PeerTable } from './peer-table.ts';
import { RateLimiter } from './rate-limiter.ts';
import { sourceKey } from './source-key.ts';

/**
 * What hbbs does with each message (FACTS §5), without sockets: the server hands it decoded
 * messages with their source, and it answers through the connection objects and the UDP sender
 * it was given. docs/rendezvous.md §2 lists every message and where DoorKeeper differs.
 */

/** A source or destination address, IPv4 in dotted form (try_into_v4 applied). */
export interface Addr {
  address: string;
  port: number;
}

/** A connection on the main port (TCP N or WebSocket N+2) as the core sees it. */
export interface RdvConn extends PeerRoute {
  readonly remote: Addr;
  readonly ws: boolean;
  /** One message; the transport frames (and encrypts) it. */
  send(bytes: Uint8Array): void;
  close(): void;
  /** The id this connection registered (TCP registration), or null. */
  registeredAs: string | null;
  /** Punch and relay requests seen on this connection. */
  requests: number;
}

export interface RendezvousEvents {
  registration(kind: 'peer' | 'pk', transport: 'udp' | 'tcp', result: string): void;
  punch(outcome: string): void;
  relayRequest(outcome: string): void;
  /** Something was dropped or refused without an answer; `reason` is a short label. */
  dropped(reason: string): void;
  audit(e: { event: string; clientIp: string; target: string; detail: string }): void;
}

export interface RendezvousCoreOptions {
  /** The licence key clients must send ('' = none enforced). */
  enforcedKey: string;
  /** Signs IdPk for PunchHoleResponse / RelayResponse. */
  keys: ServerKeyPair;
  /** Relay servers told to peers, rotated; empty = none (clients use the rendezvous host, port+1). */
  relayServers: string[];
  /** Sent in ConfigUpdate to clients with a lower serial. */
  serial: number;
  /** ALWAYS_USE_RELAY: tell B the requester is behind a symmetric NAT, so B goes to the relay. */
  alwaysUseRelay: boolean;
  /** RegisterPkResponse.keep_alive for TCP-registered peers (seconds). */
  keepAliveS: number;
  /**
   * Punch and relay requests forwarded to peers per source address and second (bursts of twice
   * that); beyond, they are dropped unanswered (the client retries). 0 = no limit (hbbs).
   */
  forwardPerIp: number;
}

const ID_MIN_BYTES = 6;
/**
 * Punch and relay requests one connection may make: a client makes at most 3 on a connection
 * (waiting 3, 6, 9 s); beyond this the connection is closed, so one connection cannot turn into a
 * stream of datagrams at a registered peer.
 */
export const MAX_REQUESTS_PER_CONN = 16;
const REG_PK_WINDOW_MS = 6_000;
/** How long a PunchHole with udp_port waits for B's PunchHoleSent over UDP (the client listens 20 s). */
export const UDP_PUNCH_TTL_MS = 20_000;
/** Outstanding UDP punches remembered at once; beyond, new ones are forwarded as TCP punches. */
export const MAX_UDP_PUNCHES = 10_000;

export class RendezvousCore {
  readonly #peers: PeerTable;
  readonly #blocker: IpBlocker;
  readonly #sendUdp: (to: Addr, bytes: Uint8Array) => void;
  readonly #o: RendezvousCoreOptions;
  readonly #ev: RendezvousEvents;
  readonly #now: () => number;
  /** tcp_punch: the connection of a requester (A) waiting for an answer, by its address. */
  readonly #waiting = new Map<string, RdvConn>();
  #relayTurn = 0;
  /**
   * UDP punches forwarded to B (PunchHole with udp_port), by requester address and B's id: the
   * only PunchHoleSent datagrams taken are those that answer one of these, from B's registered IP.
   */
  readonly #udpPunches = new Map<string, { bAddress: string; expires: number }>();
  readonly #forwards: RateLimiter | null;
  /** Pre-encoded answers of the hot UDP path. */
  readonly #regPeerTrue = encodeRendezvous({ union: { case: 'registerPeerResponse', value: { requestPk: true } } });
  readonly #regPeerFalse = encodeRendezvous({ union: { case: 'registerPeerResponse', value: { requestPk: false } } });

  constructor(peers: PeerTable, blocker: IpBlocker, sendUdp: (to: Addr, bytes: Uint8Array) => void, o: RendezvousCoreOptions, ev: RendezvousEvents, now: () => number = Date.now) {
    this.#peers = peers;
    this.#blocker = blocker;
    this.#sendUdp = sendUdp;
    this.#o = o;
    this.#ev = ev;
    this.#now = now;
    this.#forwards = o.forwardPerIp > 0 ? new RateLimiter(o.forwardPerIp, 2 * o.forwardPerIp, 100_000, now) : null;
  }

  get waiting(): number {
    return this.#waiting.size;
  }

  // ---- UDP (FACTS §5.1)

  /** One datagram of `size` bytes from `from`, decoded. All its answers together are at most `size` bytes. */
  udp(m: RendezvousMessage, from: Addr, size: number): void {
    let budget = size;
    const reply = (bytes: Uint8Array): void => {
      if (bytes.length > budget) return this.#ev.dropped('udp_reply_larger_than_request');
      budget -= bytes.length;
      this.#sendUdp(from, bytes);
    };
    switch (m.union.case) {
      case 'registerPeer': {
        const { id, serial } = m.union.value;
        if (!id) return this.#ev.dropped('empty_id');
        reply(this.#registerPeer(id, from, null) ? this.#regPeerTrue : this.#regPeerFalse);
        if (this.#o.serial > serial) reply(this.#configUpdate());
        return;
      }
      case 'registerPk': {
        const r = this.#registerPk(m.union.value, from, null);
        if (r !== null) reply(encodeRendezvous({ union: { case: 'registerPkResponse', value: { result: r } } }));
        return;
      }
      case 'punchHoleSent':
        // B's UDP punch answer (docs/rendezvous.md "UDP hole punching"): taken only when it
        // answers a PunchHole we sent with udp_port, and answered over A's TCP, never by UDP.
        return this.#udpPunchHoleSent(m.union.value, from);
      default:
        // PunchHoleRequest, LocalAddr over UDP: ignored on purpose (reflection, hbbs
        // 80d3a50/109d9a2); TestNatRequest over UDP: its answer is larger than the request
        // (docs/rendezvous.md); ConfigureUpdate (runtime reconfiguration from loopback) and
        // SoftwareUpdate are not offered; anything else has no UDP meaning.
        return this.#ev.dropped(`udp_${m.union.case ?? 'empty'}`);
    }
  }

  /** request_pk for a RegisterPeer (hbbs update_addr); refreshes the peer when it need not re-register. */
  #registerPeer(id: string, from: Addr, route: RdvConn | null): boolean {
    const p = this.#peers.memory(id);
    if (!p) {
      this.#ev.registration('peer', route ? 'tcp' : 'udp', 'request_pk');
      return true;
    }
    const ipChange = (p.port !== 0 ? from.address !== p.address : from.address !== p.ip) && !isLoopback(from.address);
    const requestPk = p.pk.length === 0 || ipChange;
    if (!requestPk) {
      p.address = from.address;
      p.port = from.port;
      p.route = route;
      this.#peers.refresh(p);
    }
    this.#ev.registration('peer', route ? 'tcp' : 'udp', requestPk ? 'request_pk' : 'ok');
    return requestPk;
  }

  /** hbbs's RegisterPk handling; null = no answer (empty uuid or pk). */
  #registerPk(rk: { id: string; uuid: Uint8Array; pk: Uint8Array }, from: Addr, route: RdvConn | null): RegisterPkResponse_Result | null {
    const transport = route ? 'tcp' : 'udp';
    const result = (r: RegisterPkResponse_Result, label: string): RegisterPkResponse_Result => {
      this.#ev.registration('pk', transport, label);
      return r;
    };
    if (rk.uuid.length === 0 || rk.pk.length === 0) {
      this.#ev.dropped('register_pk_empty');
      return null;
    }
    if (Buffer.byteLength(rk.id) < ID_MIN_BYTES) return result(RegisterPkResponse_Result.UUID_MISMATCH, 'uuid_mismatch');
    if (!this.#blocker.check(from.address, rk.id)) return result(RegisterPkResponse_Result.TOO_FREQUENT, 'too_frequent');
    const uuid = Buffer.from(rk.uuid).toString('latin1');
    const pk = Buffer.from(rk.pk).toString('latin1');
    const known = this.#peers.lookup(rk.id);
    const p = known ?? new Peer(rk.id);
    if (p.uuid !== '') {
      if (p.uuid !== uuid) return result(RegisterPkResponse_Result.UUID_MISMATCH, 'uuid_mismatch');
      if (from.address !== p.ip && p.pk !== pk) return result(RegisterPkResponse_Result.UUID_MISMATCH, 'uuid_mismatch');
    }
    const now = this.#now();
    if (now - p.regPkAt > REG_PK_WINDOW_MS) p.regPkCount = 0;
    else if (p.regPkCount > 2) return result(RegisterPkResponse_Result.TOO_FREQUENT, 'too_frequent');
    p.regPkCount++;
    p.regPkAt = now;
    const changed = !known || p.uuid !== uuid || p.pk !== pk || p.ip !== from.address;
    // The database holds every peer ever registered: a new id beyond max_stored_peers is refused.
    if (!known && !this.#peers.mayStoreAnother()) return result(RegisterPkResponse_Result.SERVER_ERROR, 'store_full');
    if (changed) {
      // Unlike hbbs, a failed write is not answered OK: the client would believe a key the
      // server does not have.
      try {
        this.#peers.repo.upsert({ id: rk.id, uuid: rk.uuid, pk: rk.pk, ip: from.address });
        if (!known) this.#peers.stored++;
      } catch {
        return result(RegisterPkResponse_Result.SERVER_ERROR, 'server_error');
      }
      p.address = from.address;
      p.port = from.port;
      p.uuid = uuid;
      p.pk = pk;
      p.ip = from.address;
      this.#peers.refresh(p, now);
    }
    if (route) {
      p.route = route;
      p.address = from.address;
      p.port = from.port;
      this.#peers.refresh(p, now);
    }
    if (!this.#peers.insert(p)) return result(RegisterPkResponse_Result.SERVER_ERROR, 'table_full');
    return result(RegisterPkResponse_Result.OK, 'ok');
  }

  #configUpdate(): Uint8Array {
    return encodeRendezvous({ union: { case: 'configureUpdate', value: { serial: this.#o.serial, rendezvousServers: [] } } });
  }

  // ---- TCP and WebSocket on the main port (FACTS §5.2)

  /**
   * One message on a main-port connection; false = the server is done with the connection (the
   * caller closes it). Only a requester's connection (PunchHoleRequest, RequestRelay) and a
   * TCP-registered peer's stay open.
   */
  tcp(conn: RdvConn, m: RendezvousMessage): boolean {
    if ((m.union.case === 'punchHoleRequest' || m.union.case === 'requestRelay') && ++conn.requests > MAX_REQUESTS_PER_CONN) {
      this.#ev.dropped('too_many_requests');
      return false;
    }
    switch (m.union.case) {
      case 'punchHoleRequest':
        this.#wait(conn);
        this.#punchHoleRequest(conn, m.union.value);
        return true;
      case 'requestRelay': {
        this.#wait(conn);
        const rr = m.union.value;
        const b = this.#peers.memory(rr.id);
        if (!b) {
          this.#ev.relayRequest('id_not_in_memory');
          return true;
        }
        if (!this.#mayForward(conn)) {
          this.#ev.relayRequest('rate_limited');
          return true;
        }
        this.#toPeer(b, encodeRendezvous({ union: { case: 'requestRelay', value: { ...rr, socketAddr: encodeAddrMangle(conn.remote) } } }));
        this.#ev.relayRequest('forwarded');
        return true;
      }
      case 'relayResponse': {
        const rr = m.union.value;
        const a = this.#waiting.get(key(decodeAddrMangle(rr.socketAddr)));
        const out = { ...rr, socketAddr: new Uint8Array(0) };
        const id = rr.union.case === 'id' ? rr.union.value : '';
        if (id) out.union = { case: 'pk', value: this.#signedPk(rr.version, id) };
        if (a) {
          a.send(encodeRendezvous({ union: { case: 'relayResponse', value: out } }));
          this.#ev.relayRequest('answered');
          this.#ev.audit({ event: 'rdv_relay', clientIp: a.remote.address, target: id || '?', detail: `uuid=${rr.uuid} from=${conn.remote.address}${rr.refuseReason ? ` refused=${rr.refuseReason}` : ''}` });
        } else this.#ev.relayRequest('requester_gone');
        return false;
      }
      case 'punchHoleSent': {
        const phs = m.union.value;
        const a = this.#waiting.get(key(decodeAddrMangle(phs.socketAddr)));
        const b = this.#peers.memory(phs.id);
        if (b) b.natType = phs.natType;
        if (a) {
          a.send(encodeRendezvous({ union: { case: 'punchHoleResponse', value: {
            socketAddr: encodeAddrMangle(conn.remote), pk: this.#signedPk(phs.version, phs.id), relayServer: phs.relayServer,
            union: { case: 'natType', value: phs.natType }, socketAddrV6: globalV6(phs.socketAddrV6),
          } } }));
          this.#ev.punch('answered');
          this.#ev.audit({ event: 'rdv_punch', clientIp: a.remote.address, target: phs.id, detail: `punch_hole peer=${conn.remote.address}:${conn.remote.port}` });
        } else this.#ev.punch('requester_gone');
        return false;
      }
      case 'localAddr': {
        const la = m.union.value;
        const a = this.#waiting.get(key(decodeAddrMangle(la.socketAddr)));
        if (a) {
          a.send(encodeRendezvous({ union: { case: 'punchHoleResponse', value: {
            socketAddr: la.localAddr, pk: this.#signedPk(la.version, la.id), relayServer: la.relayServer, union: { case: 'isLocal', value: true },
            socketAddrV6: globalV6(la.socketAddrV6),
          } } }));
          this.#ev.punch('answered_local');
          this.#ev.audit({ event: 'rdv_punch', clientIp: a.remote.address, target: la.id, detail: 'local_addr (same network)' });
        } else this.#ev.punch('requester_gone');
        return false;
      }
      case 'testNatRequest':
        conn.send(encodeRendezvous({ union: { case: 'testNatResponse', value: {
          port: conn.remote.port, ...(this.#o.serial > m.union.value.serial ? { cu: { serial: this.#o.serial } } : {}),
        } } }));
        return false;
      // TCP registration (beyond open hbbs, which answers NOT_SUPPORT): the connection becomes the
      // peer's route; PunchHole, FetchLocalAddr and RequestRelay reach it here instead of by UDP.
      case 'registerPeer': {
        const { id, serial } = m.union.value;
        if (!id) return false;
        const requestPk = this.#registerPeer(id, conn.remote, conn);
        if (!requestPk) conn.registeredAs = id;
        conn.send(requestPk ? this.#regPeerTrue : this.#regPeerFalse);
        if (this.#o.serial > serial) conn.send(this.#configUpdate());
        return true;
      }
      case 'registerPk': {
        const r = this.#registerPk(m.union.value, conn.remote, conn);
        if (r === null) return false;
        if (r === RegisterPkResponse_Result.OK) conn.registeredAs = m.union.value.id;
        conn.send(encodeRendezvous({ union: { case: 'registerPkResponse', value: { result: r, keepAlive: this.#o.keepAliveS } } }));
        return true;
      }
      case undefined:
        // An empty frame: a TCP-registered peer's heartbeat answer keeps it online; on any other
        // connection it ends it, as in hbbs.
        if (conn.registeredAs === null) return false;
        this.touch(conn);
        return true;
      default:
        // OnlineRequest (answered on N-1), HealthCheck, HttpProxyRequest, a second KeyExchange, …
        this.#ev.dropped(`tcp_${m.union.case}`);
        return false;
    }
  }

  /** Any frame from a TCP-registered peer proves it is there. */
  touch(conn: RdvConn): void {
    if (conn.registeredAs === null) return;
    const p = this.#peers.memory(conn.registeredAs);
    if (p && p.route === conn) this.#peers.refresh(p);
  }

  /** The connection has ended: forget it as a requester and as a route. */
  closed(conn: RdvConn): void {
    const k = key(conn.remote);
    if (this.#waiting.get(k) === conn) this.#waiting.delete(k);
    if (conn.registeredAs !== null) {
      const p = this.#peers.memory(conn.registeredAs);
      if (p && p.route === conn) {
        // The peer's only route is gone: offline at once, so a punch gets OFFLINE instead of a
        // datagram to the port of a TCP connection that no longer exists.
        p.route = null;
        p.lastRegTime = 0;
      }
    }
  }

  #wait(conn: RdvConn): void {
    this.#waiting.set(key(conn.remote), conn);
  }

  #punchHoleRequest(a: RdvConn, ph: { id: string; natType: NatType; licenceKey: string; udpPort: number; forceRelay: boolean; socketAddrV6: Uint8Array }): void {
    const fail = (failure: PunchHoleResponse_Failure, label: string): void => {
      a.send(encodeRendezvous({ union: { case: 'punchHoleResponse', value: { failure } } }));
      this.#ev.punch(label);
    };
    if (this.#o.enforcedKey !== '' && ph.licenceKey !== this.#o.enforcedKey) return fail(PunchHoleResponse_Failure.LICENSE_MISMATCH, 'license_mismatch');
    const b = this.#peers.lookup(ph.id);
    if (!b) return fail(PunchHoleResponse_Failure.ID_NOT_EXIST, 'id_not_exist');
    if (!this.#peers.isOnline(b) || (b.port === 0 && !(b.route && !b.route.closed))) return fail(PunchHoleResponse_Failure.OFFLINE, 'offline');
    if (!this.#mayForward(a)) return this.#ev.punch('rate_limited');
    const relayServer = this.#nextRelay();
    const socketAddr = encodeAddrMangle(a.remote);
    const sameIntranet = !a.ws && isIP(b.address) === isIP(a.remote.address) && b.address === a.remote.address;
    // The requester's IPv6 punch socket, forwarded only when it is a global unicast address:
    // B sends punch datagrams to it for up to 20 s (docs/rendezvous.md).
    const socketAddrV6 = globalV6(ph.socketAddrV6);
    if (sameIntranet) {
      this.#toPeer(b, encodeRendezvous({ union: { case: 'fetchLocalAddr', value: { socketAddr, relayServer, socketAddrV6 } } }));
      this.#ev.punch('forwarded_local');
    } else {
      const natType = this.#o.alwaysUseRelay ? NatType.SYMMETRIC : ph.natType;
      // udp_port: the port A's UDP socket was seen from; B punches A's observed IP at that port
      // and answers PunchHoleSent over UDP. Only for a UDP-registered B (its registered IP is
      // what authenticates that answer) and while the table has room.
      const udpPort = ph.udpPort > 0 && ph.udpPort <= 0xffff && !this.#o.alwaysUseRelay && !(b.route && !b.route.closed) && this.#rememberUdpPunch(a, b)
        ? ph.udpPort : 0;
      this.#toPeer(b, encodeRendezvous({ union: { case: 'punchHole', value: { socketAddr, natType, relayServer, udpPort, forceRelay: ph.forceRelay, socketAddrV6 } } }));
      this.#ev.punch(udpPort > 0 ? 'forwarded_udp' : 'forwarded');
    }
  }

  #rememberUdpPunch(a: RdvConn, b: Peer): boolean {
    const now = this.#now();
    if (this.#udpPunches.size >= MAX_UDP_PUNCHES) {
      for (const [k, v] of this.#udpPunches) if (v.expires <= now) this.#udpPunches.delete(k);
      if (this.#udpPunches.size >= MAX_UDP_PUNCHES) {
        this.#ev.dropped('udp_punch_table_full');
        return false;
      }
    }
    this.#udpPunches.set(`${key(a.remote)}|${b.id}`, { bAddress: b.address, expires: now + UDP_PUNCH_TTL_MS });
    return true;
  }

  /** PunchHoleSent by UDP: B's answer to a PunchHole with udp_port (rendezvous_mediator.rs punch_udp_hole). */
  #udpPunchHoleSent(phs: { socketAddr: Uint8Array; id: string; relayServer: string; natType: NatType; version: string; socketAddrV6: Uint8Array }, from: Addr): void {
    let aAddr: Addr;
    try {
      aAddr = decodeAddrMangle(phs.socketAddr);
    } catch {
      return this.#ev.dropped('udp_punchHoleSent');
    }
    const k = `${key(aAddr)}|${phs.id}`;
    const pending = this.#udpPunches.get(k);
    // B sends it three times; only the first that matches is used, the rest find nothing.
    if (!pending || pending.expires <= this.#now() || pending.bAddress !== from.address) return this.#ev.dropped('udp_punchHoleSent');
    this.#udpPunches.delete(k);
    const a = this.#waiting.get(key(aAddr));
    if (!a) return this.#ev.punch('requester_gone');
    const b = this.#peers.memory(phs.id);
    if (b) b.natType = phs.natType;
    a.send(encodeRendezvous({ union: { case: 'punchHoleResponse', value: {
      socketAddr: encodeAddrMangle(from), pk: this.#signedPk(phs.version, phs.id), relayServer: phs.relayServer,
      union: { case: 'natType', value: phs.natType }, isUdp: true, socketAddrV6: globalV6(phs.socketAddrV6),
    } } }));
    this.#ev.punch('answered_udp');
    this.#ev.audit({ event: 'rdv_punch', clientIp: a.remote.address, target: phs.id, detail: `punch_hole udp peer=${from.address}:${from.port}` });
  }

  /** Whether the requester's address may have one more request forwarded now (a punch storm is not). */
  #mayForward(a: RdvConn): boolean {
    if (this.#forwards === null || this.#forwards.take(sourceKey(a.remote.address))) return true;
    this.#ev.dropped('forward_rate');
    return false;
  }

  #toPeer(b: Peer, bytes: Uint8Array): void {
    if (b.route && !b.route.closed) b.route.send(bytes);
    else this.#sendUdp({ address: b.address, port: b.port }, bytes);
  }

  #nextRelay(): string {
    const list = this.#o.relayServers;
    if (list.length === 0) return '';
    return list[this.#relayTurn++ % list.length]!;
  }

  /** hbbs get_pk: sign(IdPk{id, pk}) when the request carried a version and the id is known; else empty. */
  #signedPk(version: string, id: string): Uint8Array {
    if (!version) return new Uint8Array(0);
    const p = this.#peers.lookup(id);
    return p ? signIdPk(id, p.pkBytes(), this.#o.keys) : new Uint8Array(0);
  }

  // ---- N-1: NAT test and online query (FACTS §5.3)

  /** The one message of a connection on N-1; the caller closes the connection afterwards. */
  natPort(conn: RdvConn, m: RendezvousMessage): void {
    if (m.union.case === 'testNatRequest') {
      conn.send(encodeRendezvous({ union: { case: 'testNatResponse', value: { port: conn.remote.port } } }));
    } else if (m.union.case === 'onlineRequest') {
      const peers = m.union.value.peers;
      // ceil(n/8) bytes always: the client indexes the bitmap without a bounds check.
      const states = new Uint8Array(Math.ceil(peers.length / 8));
      const now = this.#now();
      peers.forEach((id, i) => {
        const p = this.#peers.memory(id);
        if (p && this.#peers.isOnline(p, now)) states[i >> 3]! |= 0x80 >> (i & 7);
      });
      conn.send(encodeRendezvous({ union: { case: 'onlineResponse', value: { states } } }));
    } else this.#ev.dropped(`nat_port_${m.union.case ?? 'empty'}`);
  }
}

export function key(a: Addr): string {
  return `${a.address}|${a.port}`;
}

/**
 * A peer-supplied socket_addr_v6 if it decodes to a global unicast IPv6 address (2000::/3) with a
 * port; else empty. The other side sends punch datagrams to it, so loopback, link-local, ULA,
 * multicast and v4-mapped targets are not passed on.
 */
export function globalV6(bytes: Uint8Array): Uint8Array {
  if (bytes.length !== 18) return new Uint8Array(0);
  // 18 bytes: 16 address bytes then the port, little-endian (addr-mangle.ts).
  const port = bytes[16]! | (bytes[17]! << 8);
  return port > 0 && (bytes[0]! & 0xe0) === 0x20 ? bytes : new Uint8Array(0);
}

function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1';
}
