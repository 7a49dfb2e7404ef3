import { connect, type Socket } from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';
import { MAX_CANDIDATES, orderCandidates, type Candidate } from './candidate.ts';
import { MAX_LINE_BYTES, decodeToSide, encodeLine, type Go } from './coord-messages.ts';
import { CoordinatorError } from './errors.ts';
import { lanCandidates } from './gather.ts';
import { LineDecoder } from './lines.ts';

/**
 * A side's part of coordination (docs/p2p.md §5): connect to the coordinator from an explicitly
 * bound port (the port the punch will dial from; binding it explicitly is what lets the punch's
 * sockets share it), send hello with this side's LAN candidates, answer pings, and return the
 * `go` with the peer's candidates in dialling order. The socket is returned open: closing it
 * before the punch could let the NAT drop the mapping the peer is about to dial.
 */
export interface RendezvousInit {
  readonly host: string;
  readonly port: number;
  readonly session: string;
  /** The local port to bind; 0 lets the system choose. */
  readonly localPort?: number;
  readonly timeoutMs?: number;
  /** Interfaces to take LAN candidates from (tests); the machine's by default. */
  readonly interfaces?: NodeJS.Dict<NetworkInterfaceInfo[]>;
  /** Bytes sent before hello: the gateway's serv_port wants the "DKC1" magic (relay-header.ts). */
  readonly prefix?: Buffer;
  readonly signal?: AbortSignal;
}

export interface Rendezvous {
  /** The connection to the coordinator, still open. */
  readonly socket: Socket;
  /** The local port to punch from. */
  readonly localPort: number;
  readonly go: Go;
  /** The peer's candidates, ordered and filtered for dialling. */
  readonly candidates: Candidate[];
  readonly token: Buffer;
}

export function rendezvous(init: RendezvousInit): Promise<Rendezvous> {
  return new Promise((resolve, reject) => {
    if (init.signal?.aborted) return reject(new CoordinatorError('stopped'));
    const socket = connect({ host: init.host, port: init.port, localAddress: '0.0.0.0', localPort: init.localPort ?? 0 });
    const lines = new LineDecoder(MAX_LINE_BYTES);
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      init.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(err);
    };
    const timeoutMs = init.timeoutMs ?? 20_000;
    const timer = setTimeout(() => fail(new CoordinatorError(`no go from the coordinator within ${timeoutMs} ms`)), timeoutMs);
    // The caller may pass one signal to many rendezvous (a link's punches): each takes its listener off again.
    const onAbort = (): void => fail(new CoordinatorError('stopped'));
    init.signal?.addEventListener('abort', onAbort, { once: true });
    socket.setNoDelay(true);
    socket.on('error', (err) => fail(new CoordinatorError(`coordinator connection: ${err.message}`)));
    socket.on('close', () => fail(new CoordinatorError('the coordinator closed the connection')));
    socket.on('connect', () => {
      const localPort = socket.localPort ?? 0;
      // The coordinator takes at most MAX_CANDIDATES: a host with many interfaces sends its first ones.
      const lan = lanCandidates(localPort, 4, init.interfaces).slice(0, MAX_CANDIDATES).map(({ host, port }) => ({ host, port }));
      if (init.prefix) socket.write(init.prefix);
      socket.write(encodeLine({ t: 'hello', session: init.session, lan }));
    });
    socket.on('data', (chunk: Buffer) => {
      if (settled) return;
      try {
        for (const line of lines.push(chunk)) {
          const msg = decodeToSide(line);
          if (msg.t === 'ping') socket.write(encodeLine({ t: 'pong', n: msg.n }));
          else if (msg.t === 'error') throw new CoordinatorError(`coordinator: ${msg.message}`);
          else {
            settled = true;
            clearTimeout(timer);
            init.signal?.removeEventListener('abort', onAbort);
            socket.removeAllListeners('data');
            socket.removeAllListeners('close');
            socket.removeAllListeners('error');
            socket.on('error', () => undefined);
            socket.pause();
            resolve({
              socket,
              localPort: socket.localPort ?? 0,
              go: msg,
              candidates: orderCandidates(msg.peer, { mine: msg.observed, family: 4 }),
              token: Buffer.from(msg.token, 'hex'),
            });
            return;
          }
        }
      } catch (err) {
        fail(err as Error);
      }
    });
  });
}
