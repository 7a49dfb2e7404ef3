/**
 * Hostile load, part 3: the management API and state kept across a restart (issue "Hold under
 * hostile and broken conditions", attacks 5, 7 and 8). Real `dk gateway` / `dk agent`
 * processes, a fresh stack per attack, every loop bounded in count and time.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { TOTP, URI } from 'otpauth';
import { http } from '../helpers/net.ts';
import {
  ADMIN, assertHeld, establishedFrom, event, LIMITS, legitTransfer, MiB, report, restartGateway, sleep, spawnDk, startStack, underAttack,
  until, waitOnline,
} from './helpers.ts';

test('attack 5 totp-brute: wrong TOTP codes for one user from rotating source addresses are stopped per user name', async () => {
  const name = 'totp-brute';
  const st = await startStack({ hardened: { auth_fail_limit_user: LIMITS.auth_fail_limit_user } });
  try {
    const add = spawnDk(['user', 'add', 'eve', '--totp', '--backends', 'home', '--data-dir', st.gw.dataDir], st.dir);
    assert.equal(await add.exited, 0, `dk user add failed: ${add.errTail()}`);
    const uri = /otpauth:\/\/\S+/.exec(add.out())?.[0];
    assert.ok(uri, `no otpauth:// URI in ${add.out().slice(0, 300)}`);
    const totp = URI.parse(uri) as TOTP;
    const url = `${st.gw.api}/api/v1/backends`;
    const GUESSES = 150;
    const statuses: number[] = [];
    const t0 = Date.now();
    for (let i = 0; i < GUESSES && Date.now() - t0 < 10_000; i++) {
      // Never a code valid now (±1 step): a real guess that is wrong.
      const valid = new Set([-1, 0, 1].map((d) => totp.generate({ timestamp: Date.now() + d * 30_000 })));
      let code: string;
      do code = String(Math.floor(Math.random() * 1e6)).padStart(6, '0'); while (valid.has(code));
      const src = `127.0.0.${10 + (i % 200)}`; // one guess per address at most: the per-IP limit never sees two
      const r = await http('GET', url, { localAddress: src, headers: { authorization: `TOTP eve:${code}` } });
      statuses.push(r.status);
      if (statuses.length >= 20 && statuses.slice(-10).every((s) => s === 429)) break; // stopped for good: enough seen
    }
    const first429 = statuses.indexOf(429);
    const through = first429 < 0 ? statuses.filter((s) => s === 401).length : statuses.slice(0, first429).filter((s) => s === 401).length;
    const right = await http('GET', url, { localAddress: '127.0.0.250', headers: { authorization: `TOTP eve:${totp.generate()}` } });
    const adminOk = await http('GET', url, { token: ADMIN });
    report(name, `${statuses.length} wrong codes from ${Math.min(statuses.length, 200)} addresses: ${through} guesses got through (401) before the first 429 `
      + `(${first429 < 0 ? 'never' : `at guess ${first429 + 1}`}); bound auth_fail_limit_user ${LIMITS.auth_fail_limit_user}; then the right code from a fresh address: ${right.status}; admin token: ${adminOk.status}`,
    { what: 'totp', guesses: statuses.length, through, first429, right: right.status });
    assert.ok(first429 >= 0 && through <= LIMITS.auth_fail_limit_user,
      `attack ${name}: ${through} wrong TOTP codes for one user got through (401) ${first429 < 0 ? 'and none was ever refused with 429' : `before the first 429`} (bound ${LIMITS.auth_fail_limit_user})`);
    assert.ok(statuses.slice(first429).every((s) => s === 429), `attack ${name}: after the first 429 some guesses were answered again: ${statuses.slice(first429).join(',')}`);
    assert.equal(right.status, 429, `attack ${name}: the right code was answered ${right.status} after ${through} wrong guesses (want 429 while the user name is blocked)`);
    assert.equal(adminOk.status, 200, `attack ${name}: another user's token was answered ${adminOk.status}`);
  } finally {
    await st.close();
  }
});

test('attack 7 grant-restart: a grant kept alive past idle_close by a long session survives a gateway restart', async () => {
  const name = 'grant-restart';
  const IDLE = 5;
  const st = await startStack({ over: { idle_close: IDLE }, plainAgent: true });
  let s: Socket | null = null;
  try {
    const g = await http('POST', `${st.gw.api}/api/v1/access`, { token: ADMIN, body: { backend: 'home', port: st.echo.port } });
    assert.equal(g.status, 201, g.text);
    const grant = g.json as { grant_id: string; access_port: number; start_before: string };
    // A session that moves bytes for longer than idle_close.
    const sock = connect({ host: '127.0.0.1', port: grant.access_port });
    s = sock;
    assert.ok(await event(sock, 'connect'), `attack ${name}: the access port closed the connection`);
    let echoed = 0;
    sock.on('data', (c: Buffer) => { echoed += c.length; });
    const t0 = Date.now();
    let sent = 0;
    while (Date.now() - t0 < IDLE * 1000 + 500) {
      sock.write(Buffer.alloc(1024, 1));
      sent += 1024;
      await sleep(200);
    }
    await until(() => echoed === sent, 3000, 'the echo of the long session');
    const held = Date.now() - t0;
    const during = (await http('GET', `${st.gw.api}/api/v1/grants`, { token: ADMIN })).json.grants as { grant_id: string; start_before: string }[];
    sock.destroy();
    await sleep(100); // the gateway sees the session end (and extends the idle deadline from now)
    const r0 = Date.now();
    st.gw = await restartGateway(st.gw);
    await sleep(200);
    await st.reviveAgent(name);
    await waitOnline(st.gw, 'home', 5000).catch(() => undefined);
    await sleep(500); // a few sweeps (sweep_interval 0.2 s) after the start
    const restartMs = Date.now() - r0;
    const after = (await http('GET', `${st.gw.api}/api/v1/grants`, { token: ADMIN })).json.grants as { grant_id: string; start_before: string }[];
    const kept = after.find((x) => x.grant_id === grant.grant_id);
    const use = kept ? await legitTransferOn(grant.access_port) : 'not tried (the grant is gone)';
    report(name, `grant created with start_before ${grant.start_before}; session of ${held} ms moved ${sent} bytes each way; restart and agent back in ${restartMs} ms; `
      + `listed before the restart: ${during.some((x) => x.grant_id === grant.grant_id)}; after it: ${kept ? `yes, start_before ${kept.start_before}` : 'GONE'}; use after the restart: ${use}`,
    { what: 'grant', kept: !!kept, use });
    assert.ok(kept, `attack ${name}: the grant (idle_close ${IDLE} s, kept alive ${(held / 1000).toFixed(1)} s by a session) was gone after the restart`);
    assert.ok(Date.parse(kept.start_before) > Date.parse(grant.start_before), `attack ${name}: start_before after the restart ${kept.start_before} is not later than at creation ${grant.start_before}`);
    assert.equal(use, 'ok', `attack ${name}: the restored grant's access port did not carry data: ${use}`);
  } finally {
    s?.destroy();
    await st.close();
  }
});

/** Echoes 64 KiB through an access port (the grant from 127.0.0.1); 'ok' or what went wrong. */
async function legitTransferOn(port: number): Promise<string> {
  const sock = connect({ host: '127.0.0.1', port });
  sock.on('error', () => undefined);
  try {
    if (!(await event(sock, 'connect'))) return 'the access port closed the connection';
    const data = Buffer.alloc(65536, 7);
    let got = 0;
    sock.on('data', (c: Buffer) => { got += c.length; });
    sock.write(data);
    await until(() => got >= data.length || sock.destroyed, 3000, 'the echo');
    return got === data.length ? 'ok' : `got ${got} of ${data.length} bytes back`;
  } catch (e) {
    return (e as Error).message;
  } finally {
    sock.destroy();
  }
}

test('attack 8 http-bodies-and-idle: 30 × 100 MB bodies to /healthz, then 1,000 idle management connections', async () => {
  const name = 'http-bodies';
  const st = await startStack({ hardened: { mgmt_max_connections: LIMITS.mgmt_max_connections } });
  const idle = new Set<Socket>();
  try {
    const procs = { gateway: st.gw.proc };
    const BODY = 100 * 1000 * 1000;
    const results: { status: number; sent: number }[] = [];
    /** Refused: 413, or the connection closed before 32 MiB of the body went out. */
    const refusedEarly = (r: { status: number; sent: number }): boolean => r.status === 413 || r.sent < 32 * MiB;
    const problems: string[] = [];
    const m = await underAttack(name, {
      procs, legit: { gw: st.gw, echoPort: st.echo.port }, probe: st.gw,
      attack: async (stop) => {
        const t0 = Date.now();
        const chunk = Buffer.alloc(MiB, 0x61);
        const one = async (): Promise<void> => {
          const s = connect({ host: '127.0.0.1', port: st.gw.mgmtPort, localAddress: '127.0.0.6' });
          s.on('error', () => undefined);
          let status = 0;
          s.on('data', (c: Buffer) => { status ||= Number(/^HTTP\/1\.1 (\d{3})/.exec(c.toString('latin1'))?.[1] ?? -1); });
          const closed = event(s, 'close');
          await event(s, 'connect');
          s.write(`POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${BODY}\r\n\r\n`);
          let sent = 0;
          // Like curl -d @file: the whole body goes out whatever the server answered meanwhile.
          while (sent < BODY && !s.destroyed && !stop() && Date.now() - t0 < 15_000) {
            const c = chunk.subarray(0, Math.min(chunk.length, BODY - sent));
            sent += c.length;
            if (!s.write(c)) await Promise.race([event(s, 'drain'), closed, sleep(500)]);
          }
          await Promise.race([closed, sleep(status ? 200 : 2000)]);
          s.destroy();
          results.push({ status, sent: s.bytesWritten }); // what the gateway's kernel took, headers included
        };
        for (let i = 0; i < 30 && !stop() && Date.now() - t0 < 15_000; i += 3) await Promise.all([one(), one(), one()]);
        const refused = results.filter(refusedEarly).length;
        const mb = results.map((r) => r.sent / 1e6).sort((a, b) => a - b);
        return `${results.length} bodies of 100 MB: ${refused} refused (statuses ${[...new Set(results.map((r) => r.status))].join(',')}), `
          + `MB the gateway took: median ${mb[Math.floor(mb.length / 2)]?.toFixed(0)}, max ${mb[mb.length - 1]?.toFixed(0)}`;
      },
    });
    try {
      assertHeld(name, m, procs);
    } catch (e) {
      problems.push((e as Error).message);
    }
    if (results.length !== 30) problems.push(`attack ${name}: only ${results.length} of 30 requests ran`);
    const late = results.filter((r) => !refusedEarly(r));
    if (late.length > 0) {
      problems.push(`attack ${name}: ${late.length} of ${results.length} bodies were not refused early (statuses ${[...new Set(late.map((r) => r.status))].join(',')}, `
        + `up to ${(Math.max(...late.map((r) => r.sent)) / 1e6).toFixed(0)} MB taken; want 413 or a close within 32 MiB)`);
    }

    // Idle connections: opened from one address, nothing sent.
    const name2 = 'mgmt-idle';
    const t0 = Date.now();
    for (let i = 0; i < 1000 && Date.now() - t0 < 6000; i += 100) {
      await Promise.all(Array.from({ length: 100 }, async () => {
        const s = connect({ host: '127.0.0.1', port: st.gw.mgmtPort, localAddress: '127.0.0.7' });
        s.on('error', () => undefined);
        idle.add(s);
        s.once('close', () => idle.delete(s));
        await Promise.race([event(s, 'connect'), sleep(2000)]);
      }));
    }
    await sleep(500);
    const held = establishedFrom(st.gw.mgmtPort, '127.0.0.7');
    const q0 = Date.now();
    const api = await Promise.race([
      http('GET', `${st.gw.api}/api/v1/backends`, { token: ADMIN }).then((r) => `${r.status}`, (e: Error) => e.message),
      sleep(5000).then(() => 'no answer within 5 s'),
    ]);
    const legit = await legitTransfer(st.gw, st.echo.port, 1 * MiB, 10_000);
    report(name2, `1000 idle connections from 127.0.0.7: the gateway holds ${held} (bound mgmt_max_connections ${LIMITS.mgmt_max_connections}); `
      + `a legitimate API request: ${api} in ${Date.now() - q0} ms; a transfer: ${legit.ok ? 'ok' : legit.detail}`, { what: 'mgmt-idle', held, api });
    if (held > LIMITS.mgmt_max_connections) problems.push(`attack ${name2}: the gateway holds ${held} idle management connections (bound ${LIMITS.mgmt_max_connections})`);
    if (api !== '200') problems.push(`attack ${name2}: a legitimate API request was answered ${api} while idle connections were held`);
    if (!legit.ok) problems.push(`attack ${name2}: a legitimate transfer failed: ${legit.detail}`);
    assert.deepEqual(problems, [], problems.join('; '));
  } finally {
    for (const s of idle) s.destroy();
    await st.close();
  }
});



test('attack 11 agent-restart (a broken condition found by this suite): `dk agent` (plain and encrypted) outlives a gateway restart and is back online at once', async () => {
  const name = 'agent-restart';
  const problems: string[] = [];
  for (const plain of [true, false]) {
    const st = await startStack({ plainAgent: plain });
    try {
      const r0 = Date.now();
      st.gw = await restartGateway(st.gw);
      const online = await waitOnline(st.gw, 'home', 5000).then(() => Date.now() - r0, () => null);
      const alive = st.agent.alive();
      const mode = plain ? 'plain' : 'encrypted';
      report(name, `${mode} agent after a gateway restart: process ${alive ? 'running' : `EXITED (code ${await st.agent.exited})`}, `
        + `${online === null ? 'NOT back online within 5 s' : `back online ${online} ms after the restart began`}`, { what: 'agent-restart', plain, alive, online });
      if (!alive) problems.push(`the ${mode} agent process exited when the gateway restarted (code ${await st.agent.exited})`);
      else if (online === null) problems.push(`the ${mode} agent was not back online within 5 s of a gateway restart`);
    } finally {
      await st.close();
    }
  }
  assert.deepEqual(problems, [], `attack ${name}: ${problems.join('; ')}`);
});
