/**
 * Hostile load, part 2: serv_port before and around authentication (issue "Hold under hostile
 * and broken conditions", attacks 4, 6, 9 and 10). Real `dk gateway` / `dk agent` processes,
 * a fresh stack per attack, every loop bounded in count and time.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { makeHandshake } from '../../src/auth/handshake.ts';
import { Command, encodeCmd, encodeExpose, Feature, FrameType, ipToBytes } from '../../src/protocol/index.ts';
import {
  assertHeld, backendState, establishedFrom, event, fdCount, frameReader, KEYS, LIMITS, rawAgent, report, restartGateway,
  sleep, startStack, underAttack, until, waitOnline,
} from './helpers.ts';

/** Opens `n` connections from `localAddress` (at most 100 connecting at once), each sending `first` if given. */
async function openMany(port: number, localAddress: string, n: number, first: Buffer | null, maxMs: number, into: Set<Socket>): Promise<{ opened: number; failed: number }> {
  const t0 = Date.now();
  let opened = 0;
  let failed = 0;
  for (let i = 0; i < n && Date.now() - t0 < maxMs; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, n - i) }, async () => {
      const s = connect({ host: '127.0.0.1', port, localAddress });
      s.on('error', () => undefined);
      into.add(s);
      s.once('close', () => into.delete(s));
      const r = await Promise.race([event(s, 'connect'), sleep(2000).then(() => false)]);
      if (!r) { failed++; return; }
      opened++;
      if (first) s.write(first);
    }));
  }
  return { opened, failed };
}

test('attack 4 pending-hold: 1,100 "DKL1"-only and 1,100 idle connections from one address; an agent from another address still logs in', async () => {
  const name = 'pending-hold';
  const st = await startStack({ hardened: { max_pending_per_ip: LIMITS.max_pending_per_ip, max_pending_handshakes: LIMITS.max_pending_handshakes } });
  const held = new Set<Socket>();
  let counts = { idle: { opened: 0, failed: 0 }, magic: { opened: 0, failed: 0 }, established: 0, fds: 0, fdsBefore: 0 };
  try {
    const procs = { gateway: st.gw.proc };
    counts.fdsBefore = fdCount(st.gw.proc.pid);
    const m = await underAttack(name, {
      procs, legit: { gw: st.gw, echoPort: st.echo.port }, probe: st.gw, legitAfterMs: 60_000,
      attack: async () => {
        // The magic first: each is released from the pending count once its 4 bytes arrive; then
        // idle ones, which fill the count.
        const magic = await openMany(st.gw.servPort, '127.0.0.2', 1100, Buffer.from('DKL1'), 6000, held);
        const idle = await openMany(st.gw.servPort, '127.0.0.2', 1100, null, 6000, held);
        await sleep(500);
        counts = { ...counts, idle, magic, established: establishedFrom(st.gw.servPort, '127.0.0.2'), fds: fdCount(st.gw.proc.pid) };
        return `from 127.0.0.2: ${idle.opened} idle + ${magic.opened} "DKL1" connections opened (${idle.failed + magic.failed} refused at connect); `
          + `the gateway holds ${counts.established} of them (ss), its fds ${counts.fdsBefore} → ${counts.fds}; ${held.size} still open at our end`;
      },
    });
    report(name, `gateway holds ${counts.established} connections from the attacker (bound ${LIMITS.max_pending_per_ip * 2} = 2 × max_pending_per_ip ${LIMITS.max_pending_per_ip})`,
      { what: 'held', held: counts.established, fds: counts.fds, fdsBefore: counts.fdsBefore });
    assertHeld(name, m, procs);
    assert.ok(counts.established <= LIMITS.max_pending_per_ip * 2,
      `attack ${name}: the gateway holds ${counts.established} unauthenticated connections from one address (bound ${LIMITS.max_pending_per_ip * 2})`);
  } finally {
    for (const s of held) s.destroy();
    await st.close();
  }
});

test('attack 6 replay-restart: a plain handshake seen before a restart is refused after it', async () => {
  const name = 'replay-restart';
  const st = await startStack({ plainAgent: true });
  const socks: Socket[] = [];
  try {
    const hs = makeHandshake('home', KEYS.home);
    /** Sends the captured 32 bytes (and a HELLO) from 127.0.0.4; accepted = the gateway's HELLO came back within 2 s. */
    const use = async (): Promise<{ accepted: boolean; closed: boolean }> => {
      const s = await rawAgent(st.gw.servPort, { name: 'home', key: KEYS.home, localAddress: '127.0.0.4', handshake: hs, hello: Feature.FLOW | Feature.PONG });
      socks.push(s);
      let accepted = false;
      frameReader(s, (f) => { if (f.type === FrameType.CMD && f.command === Command.HELLO) accepted = true; });
      const closed = await Promise.race([event(s, 'close'), until(() => accepted, 2000, 'HELLO').then(() => false, () => false)]);
      return { accepted, closed: closed || s.destroyed };
    };
    const first = await use();
    assert.ok(first.accepted, `attack ${name}: the first use of a fresh handshake was not accepted (the test is broken)`);
    socks.forEach((s) => s.destroy());
    // The real agent takes its backend back, then the gateway restarts on the same data dir and ports.
    await sleep(300);
    await st.reviveAgent(name);
    await until(async () => { const b = await backendState(st.gw, 'home'); return b?.online && !b.remote?.startsWith('127.0.0.4'); }, 10_000, 'the real agent back');
    st.gw = await restartGateway(st.gw);
    await sleep(300);
    await st.reviveAgent(name);
    await waitOnline(st.gw);
    const replay = await use();
    await sleep(300);
    const b = await backendState(st.gw, 'home');
    report(name, `replay after restart: ${replay.accepted ? 'ACCEPTED' : 'refused'}${replay.closed ? ', connection closed' : ', connection left open'}; `
      + `backend home ${b?.online ? 'online' : 'OFFLINE'} from ${b?.remote ?? '?'}`, { what: 'replay', ...replay, remote: b?.remote });
    assert.ok(!replay.accepted, `attack ${name}: a handshake replayed after a restart was accepted (backend home now from ${b?.remote})`);
    assert.ok(replay.closed, `attack ${name}: the replayed handshake's connection was left open`);
    assert.ok(b?.online && !b.remote?.startsWith('127.0.0.4'), `attack ${name}: the real agent is not the one online (remote ${b?.remote})`);
  } finally {
    socks.forEach((s) => s.destroy());
    await st.close();
  }
});

test('attack 9 expose-flood: one agent asks for 600 static tunnels', async () => {
  const name = 'expose-flood';
  const N = 600;
  const exposeBase = randomInt(12_000, 19_000);
  const st = await startStack({ over: { expose_ports: `${exposeBase}-${exposeBase + N - 1}` }, hardened: { max_exposes_per_agent: LIMITS.max_exposes_per_agent } });
  let evil: Socket | null = null;
  const seen = { ok: 0, refused: 0 };
  const fds = { before: 0, after: 0 };
  try {
    const procs = { gateway: st.gw.proc, agent: st.agent };
    const m = await underAttack(name, {
      procs, legit: { gw: st.gw, echoPort: st.echo.port }, probe: st.gw, legitAfterMs: 60_000,
      attack: async () => {
        fds.before = fdCount(st.gw.proc.pid);
        evil = await rawAgent(st.gw.servPort, { name: 'evil', key: KEYS.evil, localAddress: '127.0.0.5', hello: Feature.FLOW | Feature.PONG | Feature.EXPOSE });
        const sock = evil;
        let hello = false;
        frameReader(sock, (f) => {
          if (f.type !== FrameType.CMD) return;
          if (f.command === Command.HELLO) hello = true;
          if (f.command === Command.EXPOSE) { if (f.params[0] === 0) seen.ok++; else seen.refused++; }
        });
        await until(() => hello || sock.destroyed, 5000, 'the gateway HELLO');
        for (let i = 0; i < N && !sock.destroyed; i++) {
          sock.write(encodeCmdExpose(i + 1, exposeBase + i, st.echo.port));
        }
        await until(() => seen.ok + seen.refused >= N || sock.destroyed, 6000, 'EXPOSE answers').catch(() => undefined);
        await sleep(200);
        fds.after = fdCount(st.gw.proc.pid);
        return `${N} EXPOSE requests: ${seen.ok} published, ${seen.refused} refused${sock.destroyed ? ', link closed by the gateway' : ''}; gateway fds ${fds.before} → ${fds.after}`;
      },
    });
    const b = await backendState(st.gw, 'evil');
    const listed = (b as { exposes?: unknown[] } | null)?.exposes?.length ?? 0;
    report(name, `gateway fds ${fds.before} → ${fds.after} (+${fds.after - fds.before}, bound +${LIMITS.max_exposes_per_agent + 16}); ${seen.ok} tunnels published (bound ${LIMITS.max_exposes_per_agent}), ${listed} listed`,
      { what: 'fds', ...fds, published: seen.ok });
    assertHeld(name, m, procs);
    assert.ok(seen.ok <= LIMITS.max_exposes_per_agent, `attack ${name}: ${seen.ok} static tunnels published for one agent (bound max_exposes_per_agent ${LIMITS.max_exposes_per_agent})`);
    assert.ok(fds.after - fds.before <= LIMITS.max_exposes_per_agent + 16, `attack ${name}: gateway fds ${fds.before} → ${fds.after} (+${fds.after - fds.before}, bound +${LIMITS.max_exposes_per_agent + 16})`);
  } finally {
    (evil as Socket | null)?.destroy();
    await st.close();
  }
});

function encodeCmdExpose(id: number, remotePort: number, targetPort: number): Buffer {
  return encodeCmd(id, Command.EXPOSE, encodeExpose({ remotePort, targetPort, target: ipToBytes('127.0.0.1'), allow: [] }));
}

test('attack 10 auth-log: thousands of wrong HMAC handshakes from four addresses grow the log by a bounded amount', async () => {
  const name = 'auth-log';
  const interval = LIMITS.auth_log_interval;
  const st = await startStack({ hardened: { auth_log_interval: interval, max_pending_per_ip: LIMITS.max_pending_per_ip } });
  const BOUND = 64 * 1024;
  let sent = 0;
  let errBefore = 0;
  try {
    const procs = { gateway: st.gw.proc, agent: st.agent };
    errBefore = st.gw.proc.errBytes();
    const m = await underAttack(name, {
      procs, legit: { gw: st.gw, echoPort: st.echo.port }, probe: st.gw,
      attack: async () => {
        const t0 = Date.now();
        const sources = ['127.0.0.20', '127.0.0.21', '127.0.0.22', '127.0.0.23'];
        const one = async (src: string): Promise<void> => {
          const s = connect({ host: '127.0.0.1', port: st.gw.servPort, localAddress: src });
          s.on('error', () => undefined);
          const ok = await event(s, 'connect');
          if (ok) { s.write(randomBytes(32)); sent++; }
          await Promise.race([event(s, 'close'), sleep(1000)]);
          s.destroy();
        };
        // 32 workers, 4,000 handshakes at most, 5 s at most.
        await Promise.all(Array.from({ length: 32 }, async (_, w) => {
          while (sent < 4000 && Date.now() - t0 < 5000) await one(sources[w % sources.length]!);
        }));
        // The aggregated lines of the last interval are written when it ends.
        await sleep(interval * 1000 + 500);
        return `${sent} wrong handshakes from ${sources.length} addresses in ${Date.now() - t0} ms`;
      },
    });
    const grew = st.gw.proc.errBytes() - errBefore;
    report(name, `gateway stderr grew ${grew} bytes (${(grew / Math.max(1, sent)).toFixed(1)} per bad handshake; bound ${BOUND})`, { what: 'log', grew, sent });
    assertHeld(name, m, procs);
    assert.ok(sent >= 1000, `attack ${name}: only ${sent} handshakes sent (the test is broken)`);
    assert.ok(grew <= BOUND, `attack ${name}: gateway stderr grew ${grew} bytes for ${sent} wrong handshakes (bound ${BOUND}); last lines: ${st.gw.proc.errTail().slice(-400)}`);
  } finally {
    await st.close();
  }
});
