import { connect, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { makeHandshake } from '../../src/auth/handshake.ts';
import { clientNew, NEW_REPLY_SIZE, trafficKeys } from '../../src/link/handshake.ts';
import { readExact } from '../../src/link/read-exact.ts';
import { MAX_DATA, Rec, RecordSealer } from '../../src/link/record.ts';
import { Command, encodeCmd, encodeHello, PROTOCOL_VERSION } from '../../src/protocol/index.ts';
import { connected } from '../../src/util/connect.ts';

/**
 * A hostile peer that speaks just enough to get in and then never reads: its socket is paused
 * after the handshake, so everything the other side writes stays in that side's buffers (and
 * the loopback kernel buffers, a few MiB at most). send() puts bytes on the wire as this peer's
 * transport carries them: raw on a plain socket, or as link DATA records — never an ACK.
 */
export interface HostilePeer {
  socket: Socket;
  /** Writes bytes (DK frames, or a dk connect request line); resolves when the socket took them. */
  send(buf: Buffer): Promise<void>;
  /** Link only: a sealed link-layer PING record (answered with a PONG record), to write raw. */
  linkPing?(): Buffer;
  /**
   * Keeps sending what make() returns for `untilMs` or until the socket dies (raw: straight to
   * the socket, not wrapped in link DATA); returns the bytes sent.
   */
  flood(make: () => Buffer, untilMs: number, raw?: boolean): Promise<number>;
  close(): void;
}

function written(s: Socket, buf: Buffer | Buffer[]): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed) return resolve();
    const bufs = Array.isArray(buf) ? buf : [buf];
    let ok = true;
    for (const b of bufs) ok = s.write(b);
    if (ok) return resolve();
    const done = (): void => { s.off('drain', done); s.off('close', done); resolve(); };
    s.on('drain', done);
    s.on('close', done);
  });
}

function peer(socket: Socket, send: (b: Buffer) => Promise<void>): HostilePeer {
  socket.on('error', () => undefined);
  socket.pause();
  return {
    socket,
    send,
    async flood(make, untilMs, raw = false) {
      const until = Date.now() + untilMs;
      let n = 0;
      // A sender whose peer stopped reading waits for 'drain' forever: the deadline wins.
      const deadline = new Promise<void>((r) => setTimeout(r, untilMs).unref());
      while (Date.now() < until && !socket.destroyed) {
        const b = make();
        n += b.length;
        await Promise.race([raw ? written(socket, b) : send(b), deadline]);
      }
      return n;
    },
    close() { socket.destroy(); },
  };
}

/** A plain-mode agent: the 32-byte handshake and a HELLO, then whatever the test sends. */
export async function plainAgent(port: number, name: string, key: string, features = 7): Promise<HostilePeer> {
  const socket = await connected(connect({ host: '127.0.0.1', port, noDelay: true }));
  socket.write(makeHandshake(name, key));
  socket.write(encodeCmd(0, Command.HELLO, encodeHello({ version: PROTOCOL_VERSION, features, window: 256 * 1024 })));
  return peer(socket, (b) => written(socket, b));
}

/** A link client (purpose 1 agent, 2 dk connect) that never reads and never acknowledges. */
export async function linkPeer(port: number, serverKey: Buffer, purpose: number): Promise<HostilePeer> {
  const socket = await connected(connect({ host: '127.0.0.1', port, noDelay: true }));
  const hs = clientNew(serverKey, purpose);
  socket.write(hs.message);
  const reply = await readExact(socket, NEW_REPLY_SIZE, 5000);
  const secrets = hs.finish(reply.msg);
  const sealer = new RecordSealer(trafficKeys(secrets.master, secrets.salt, 0).c2s);
  let offset = 0;
  const send = async (b: Buffer): Promise<void> => {
    for (let off = 0; off < b.length; off += MAX_DATA) {
      const piece = b.subarray(off, off + MAX_DATA);
      const rec = sealer.dataPieces(offset, [piece]);
      offset += piece.length;
      await written(socket, rec);
    }
  };
  const p = peer(socket, send);
  p.linkPing = () => sealer.control(Rec.PING, Date.now());
  return p;
}

// A full GC on demand, without --expose-gc on the command line.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** Live heap and buffers after a full GC: what the process retains, without the flood's garbage. */
export async function liveHeap(): Promise<number> {
  // Twice, a turn apart: the first collection's finalizers release the buffers' memory.
  gc();
  await new Promise((r) => setImmediate(r));
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}
