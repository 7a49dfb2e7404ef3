/**
 * The link over in-memory transports (stream.duplexPair, no TCP) with a fake clock: LinkServer
 * and connectLink drive the handshakes over Duplex pipes, the session resumes onto a second pipe,
 * and failed resumes are reported with their reasons.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { duplexPair, type Duplex } from 'node:stream';
import { test } from 'node:test';
import {
  connectLink, generateKeyPair, LinkServer, ResumeError, ResumeInitiator, ResumeResponder, type ConnectOptions,
  type LinkServerOptions, type LinkStream,
} from '../../src/link/index.ts';
import { resumeProof } from '../../src/link/handshake.ts';
import { waitFor } from '../helpers/net.ts';
import { FakeClock } from './fake-clock.ts';

/** A byte pipe between two ends that the test can cut (both ends destroyed) or mute (bytes dropped: a blackhole). */
interface Pipe {
  client: Duplex;
  server: Duplex;
  muted: boolean;
  cut(): void;
}

function pipe(): Pipe {
  // Two pairs joined by a relay, so that the relay can drop bytes.
  const [client, relayC] = duplexPair();
  const [relayS, server] = duplexPair();
  const p: Pipe = {
    client, server, muted: false,
    cut() { client.destroy(); server.destroy(); relayC.destroy(); relayS.destroy(); },
  };
  relayC.on('data', (d: Buffer) => { if (!p.muted) relayS.write(d); });
  relayS.on('data', (d: Buffer) => { if (!p.muted) relayC.write(d); });
  for (const s of [client, server, relayC, relayS]) s.on('error', () => undefined);
  return p;
}

interface Rig {
  clock: FakeClock;
  server: LinkServer<Duplex>;
  pipes: Pipe[];
  serverStreams: LinkStream[];
  resumeFailures: ResumeError[];
  connect(o?: Partial<ConnectOptions>): Promise<{ c: LinkStream; s: LinkStream }>;
  close(): void;
}

function rig(o: Partial<LinkServerOptions<Duplex>> = {}): Rig {
  const clock = new FakeClock();
  const pipes: Pipe[] = [];
  const serverStreams: LinkStream[] = [];
  const resumeFailures: ResumeError[] = [];
  const clients: LinkStream[] = [];
  const key = generateKeyPair();
  const server = new LinkServer<Duplex>({
    key, clock, ...o,
    onStream: (s) => { s.on('error', () => undefined); serverStreams.push(s); },
    onResumeFailed: (err) => resumeFailures.push(err),
  });
  return {
    clock, server, pipes, serverStreams, resumeFailures,
    async connect(co = {}) {
      const c = await connectLink({
        host: 'in-memory', port: 0, serverKey: key.publicRaw, clock,
        dial: () => {
          const p = pipe();
          pipes.push(p);
          void server.handle(p.server, Buffer.alloc(0));
          return p.client;
        },
        ...co,
      });
      clients.push(c);
      await waitFor(() => serverStreams.length === clients.length, 2000, 'the server stream');
      return { c, s: serverStreams.at(-1)! };
    },
    close() {
      for (const c of clients) { c.on('error', () => undefined); c.destroy(); }
      server.close();
      for (const p of pipes) p.cut();
    },
  };
}

function readN(s: LinkStream, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let have = 0;
    const onData = (c: Buffer): void => {
      parts.push(c);
      have += c.length;
      if (have >= n) { s.off('data', onData); s.pause(); resolve(Buffer.concat(parts)); }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.resume();
  });
}

test('over in-memory pipes: a session resumes onto a second transport, bytes exact both ways, epoch 1 at both ends', async (t) => {
  const r = rig();
  t.after(() => r.close());
  const { c, s } = await r.connect();
  assert.equal(c.remoteAddress, undefined, 'a Duplex has no address; attach() needs none');
  const up = randomBytes(3 * 1024 * 1024);
  const down = randomBytes(1024 * 1024);
  const gotUp = readN(s, up.length);
  const gotDown = readN(c, down.length);
  c.write(up.subarray(0, 1024 * 1024));
  s.write(down.subarray(0, 300 * 1024));
  // The network under the session goes away: both ends of the pipe die.
  const detached = once(c, 'detached');
  r.pipes[0]!.cut();
  await detached;
  // Written while detached: held in the replay buffers, sent on the next transport.
  c.write(up.subarray(1024 * 1024));
  s.write(down.subarray(300 * 1024));
  await waitFor(() => c.attached && s.attached && r.pipes.length === 2, 2000, 'the resume onto the second pipe');
  assert.deepEqual(await gotUp, up);
  assert.deepEqual(await gotDown, down);
  assert.equal(c.epoch, 1);
  assert.equal(s.epoch, 1);
  assert.equal(c.stats.attaches, 2);
  assert.equal(s.stats.attaches, 2);
});

test('over in-memory pipes: a silent transport is dropped after deadMs on the fake clock, and the session resumes', async (t) => {
  const r = rig({ pingMs: 1000, deadMs: 3000 });
  t.after(() => r.close());
  const { c, s } = await r.connect({ pingMs: 1000, deadMs: 3000 });
  const reasons: string[] = [];
  c.on('detached', (why: string) => reasons.push(why));
  r.pipes[0]!.muted = true; // a blackhole: both sockets stay open, nothing arrives
  r.clock.advance(2000);
  assert.equal(c.attached, true, 'not dropped before deadMs');
  r.clock.advance(2000);
  assert.deepEqual(reasons, ['nothing received for 3000 ms']);
  await waitFor(() => c.attached && r.pipes.length === 2 && s.epoch === 1, 2000, 'the resume');
  const got = readN(s, 5);
  c.write('alive');
  assert.equal((await got).toString(), 'alive');
});

test('over in-memory pipes: a resume the server cannot match fails with reasons as events, then DK_LINK_SESSION_LOST', async (t) => {
  const r = rig({ detachTimeoutMs: 5000 });
  t.after(() => r.close());
  const { c, s } = await r.connect({ resumeForMs: 60_000 });
  const failed: ResumeError[] = [];
  c.on('resumeFailed', (e: ResumeError) => failed.push(e));
  const serverErr = once(s, 'error');
  // The server loses its side while the client's stays open and hears nothing (muted), until the
  // server has forgotten the session (detach timeout, on the fake clock).
  const first = r.pipes[0]!;
  first.muted = true;
  s.dropConnection('test: server side lost');
  r.clock.advance(5001);
  const [se] = (await serverErr) as [Error & { code?: string }];
  assert.equal(se.code, 'DK_LINK_SESSION_LOST');
  assert.equal(r.server.sessions.size, 0);
  // Then the client's connection goes too; each resume attempt hears "no such session".
  first.cut();
  const clientErr = once(c, 'error');
  for (let i = 0; i < 50 && !c.destroyed; i++) {
    await new Promise((res) => setImmediate(res));
    await new Promise((res) => setTimeout(res, 5));
    r.clock.advance(1000); // the backoff between attempts runs on the fake clock
  }
  const [ce] = (await clientErr) as [Error & { code?: string }];
  assert.equal(ce.code, 'DK_LINK_SESSION_LOST');
  const unknown = failed.filter((e) => e.reason === 'unknown-session');
  assert.equal(unknown.length, 3, `reasons: ${failed.map((e) => e.reason).join(', ')}`);
  assert.ok(failed.every((e) => e instanceof ResumeError && e.code === 'DK_LINK_RESUME'));
  assert.ok(r.resumeFailures.filter((e) => e.reason === 'unknown-session').length >= 3, 'the server reported them too');
});

test('over in-memory pipes: a replayed or stale resume proof is refused with its reason; the live transport is untouched', async (t) => {
  const r = rig();
  t.after(() => r.close());
  const { c, s } = await r.connect();
  const failed: ResumeError[] = [];
  s.on('resumeFailed', (e: ResumeError) => failed.push(e));
  const attempt = async (makeProof: (hello: Buffer, challenge: Buffer) => Buffer): Promise<void> => {
    const p = pipe();
    r.pipes.push(p);
    const handled = r.server.handle(p.server, Buffer.alloc(0));
    const init = new ResumeInitiator({ epoch: 100, received: 0, enterEpoch: () => undefined }, c.secrets);
    const hello = init.hello();
    p.client.write(hello);
    const [ch] = (await once(p.client, 'data')) as [Buffer];
    p.client.write(makeProof(hello, ch));
    await handled;
    p.cut();
  };
  // A proof from another exchange (another server nonce): a replay.
  await attempt(() => resumeProof(c.secrets, randomBytes(16), randomBytes(16), 5, 0));
  // A fresh, correct proof for an epoch that is not newer: stale.
  await attempt((hello, ch) => resumeProof(c.secrets, hello.subarray(21, 37), ch.subarray(1, 17), 0, s.received));
  assert.deepEqual(failed.map((e) => e.reason), ['not-authentic', 'stale-epoch']);
  assert.deepEqual(r.resumeFailures.map((e) => e.reason), ['not-authentic', 'stale-epoch']);
  assert.equal(s.epoch, 0);
  assert.equal(s.stats.attaches, 1);
  const got = readN(s, 10);
  c.write('still here');
  assert.equal((await got).toString(), 'still here');
});

test('over in-memory pipes: RESUME state objects alone move the epoch; a bad position destroys the stream with its reason', async (t) => {
  const r = rig();
  t.after(() => r.close());
  const { c, s } = await r.connect();
  // Drive a resume by hand with the state objects, over a fresh pipe.
  const init = new ResumeInitiator(c.session, c.secrets);
  const resp = new ResumeResponder(init.hello());
  const proof = init.prove(resp.challenge());
  assert.equal(c.epoch, 1, 'the initiator took the next epoch');
  resp.check(s.session, s.secrets, proof);
  assert.equal(s.epoch, 0, 'check() changes nothing');
  const accepted = resp.accept(s.session, s.secrets);
  assert.equal(s.epoch, 1);
  const done = init.finish(accepted.reply);
  assert.equal(done.peerReceived, s.received);
  assert.throws(() => init.finish(Buffer.alloc(accepted.reply.length)), (e: ResumeError) => e.reason === 'not-authentic');
  const p = pipe();
  r.pipes.push(p);
  s.attach(p.server, accepted.keys, accepted.peerReceived, Buffer.alloc(0));
  c.attach(p.client, done.keys, done.peerReceived, Buffer.alloc(0));
  const got = readN(s, 2);
  c.write('ok');
  assert.equal((await got).toString(), 'ok');
  // A position beyond anything sent cannot be resumed from.
  const failed = once(c, 'resumeFailed');
  const errored = once(c, 'error');
  const q = pipe();
  r.pipes.push(q);
  c.attach(q.client, done.keys, c.unacked + 1_000_000, Buffer.alloc(0));
  const [rf] = (await failed) as [ResumeError];
  assert.equal(rf.reason, 'bad-position');
  const [err] = (await errored) as [ResumeError];
  assert.equal(err.code, 'DK_LINK_RESUME');
  assert.equal(c.destroyed, true);
});
