import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { generate } from 'selfsigned';
import { certFingerprint } from '../../src/util/tls-fingerprint.ts';
import { dk, eventually, freePort, killAll, type Cli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/stack.ts';

/**
 * TLS on the management port, as a user runs it: real `dk gateway` processes, and `dk access`
 * pinning the certificate by fingerprint (--api-fingerprint / DK_API_FINGERPRINT).
 */

const FP = /SHA-256 ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})/;

async function startGateway(procs: Cli[], dataDir: string, ports: { serv: number; mgmt: number }, args: string[]): Promise<Cli> {
  const base = 20_000 + Math.floor(Math.random() * 12_000);
  const gw = dk(['gateway', '--serv-port', String(ports.serv), '--mgmt-port', String(ports.mgmt), '--bind', '127.0.0.1', '--data-dir', dataDir, ...args],
    { env: { DK_ACCESS_PORTS: `${base}-${base + 20}`, DK_LOG_FORMAT: 'json' } });
  procs.push(gw);
  await eventually(() => /link public key/.test(gw.out()) || !gw.running(), 20_000, () => `the gateway to start: ${gw.err()}`);
  assert.ok(gw.running(), gw.err());
  return gw;
}

async function access(api: string, token: string, extra: string[] = [], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  const p = dk(['access', 'default', '22', '--api', api, '--token', token, '--json', ...extra], { env });
  const r = await p.exited;
  return { code: r.code, out: p.out(), err: p.err() };
}

test('mgmt_tls self-signed: the banner prints the fingerprint; dk pins it (right: works, wrong: exit 6 naming both); it survives a restart', async (t) => {
  const procs: Cli[] = [];
  t.after(() => killAll(procs));
  const dataDir = tempDir();
  const ports = { serv: await freePort(), mgmt: await freePort() };
  const api = `https://127.0.0.1:${ports.mgmt}`;
  let gw = await startGateway(procs, dataDir, ports, ['--mgmt-tls', 'self-signed']);
  const banner = gw.out();
  assert.match(banner, new RegExp(`management API\\s+${api.replace(/\./g, '\\.')}\\n`));
  const fp = FP.exec(banner)?.[1];
  assert.ok(fp, banner);
  const token = /admin token\s+(dk_\S+)/.exec(banner)![1]!;
  assert.equal(fp, certFingerprint(readFileSync(join(dataDir, 'mgmt_tls_cert.pem'))), 'the fingerprint of the certificate kept in the data dir');
  assert.equal(statSync(join(dataDir, 'mgmt_tls_key.pem')).mode & 0o777, 0o600, 'the key is private');
  assert.match(banner, new RegExp(`access default 22 --api ${api.replace(/\./g, '\\.')} --api-fingerprint ${fp} --token`), 'the printed command pins it');

  const ok = await access(api, token, ['--api-fingerprint', fp]);
  assert.equal(ok.code, 0, ok.err);
  assert.equal(typeof JSON.parse(ok.out).access_port, 'number');
  // As a person may paste it: lower case, no colons, from the environment.
  const env = await access(api, token, [], { DK_API_FINGERPRINT: fp.replace(/:/g, '').toLowerCase() });
  assert.equal(env.code, 0, env.err);

  const wrongFp = `${fp.startsWith('00') ? '11' : '00'}${fp.slice(2)}`;
  const wrong = await access(api, token, ['--api-fingerprint', wrongFp]);
  assert.equal(wrong.code, 6, wrong.err);
  assert.ok(wrong.err.includes(fp) && wrong.err.includes(wrongFp), `names both fingerprints: ${wrong.err}`);
  assert.match(wrong.err, /^dk: the API at https:\/\/127\.0\.0\.1:\d+ presented a certificate/);

  const unpinned = await access(api, token);
  assert.equal(unpinned.code, 5, 'no pin: normal CA verification, which a self-signed certificate fails');
  assert.match(unpinned.err, /self-signed certificate.*--api-fingerprint/);
  const plain = await access(`http://127.0.0.1:${ports.mgmt}`, token, ['--api-fingerprint', fp]);
  assert.equal(plain.code, 2);
  assert.match(plain.err, /--api-fingerprint pins the API's TLS certificate, but --api http:\/\/127\.0\.0\.1:\d+ is not https/);
  const garbled = await access(api, token, ['--api-fingerprint', 'AB:CD']);
  assert.equal(garbled.code, 2);
  assert.match(garbled.err, /64 hex digits/);

  gw.kill('SIGTERM');
  assert.equal((await gw.exited).code, 0);
  gw = await startGateway(procs, dataDir, ports, ['--mgmt-tls', 'self-signed']);
  assert.match(gw.out(), new RegExp(`API on :${ports.mgmt} \\(https; certificate SHA-256 ${fp}\\)`), 'the start line of a restart prints the same fingerprint');
  const again = await access(api, token, ['--api-fingerprint', fp]);
  assert.equal(again.code, 0, again.err);
});

test('mgmt_tls from certificate files: pinned, or verified against a CA without a pin; a pin refuses even a CA-valid other certificate', async (t) => {
  const procs: Cli[] = [];
  t.after(() => killAll(procs));
  const dir = tempDir();
  const ca = await generate([{ name: 'commonName', value: 'dk test CA' }], {
    keyType: 'ec', algorithm: 'sha256',
    extensions: [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true }],
  });
  const leaf = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
    keyType: 'ec', algorithm: 'sha256', ca: { key: ca.private, cert: ca.cert },
    extensions: [{ name: 'basicConstraints', cA: false }, { name: 'extKeyUsage', serverAuth: true }, { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
  });
  const files = { ca: join(dir, 'ca.pem'), cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
  writeFileSync(files.ca, ca.cert);
  writeFileSync(files.cert, leaf.cert);
  writeFileSync(files.key, leaf.private, { mode: 0o600 });
  const fp = certFingerprint(leaf.cert);

  const ports = { serv: await freePort(), mgmt: await freePort() };
  const api = `https://127.0.0.1:${ports.mgmt}`;
  const gw = await startGateway(procs, join(dir, 'data'), ports, ['--mgmt-tls-cert', files.cert, '--mgmt-tls-key', files.key]);
  assert.equal(FP.exec(gw.out())?.[1], fp, gw.out());
  const token = /admin token\s+(dk_\S+)/.exec(gw.out())![1]!;

  const pinned = await access(api, token, ['--api-fingerprint', fp]);
  assert.equal(pinned.code, 0, pinned.err);
  const viaCa = await access(api, token, [], { NODE_EXTRA_CA_CERTS: files.ca });
  assert.equal(viaCa.code, 0, `no pin, the CA trusted: ${viaCa.err}`);
  const unknownCa = await access(api, token);
  assert.equal(unknownCa.code, 5, 'no pin, an unknown CA');
  const otherPin = await access(api, token, ['--api-fingerprint', certFingerprint(ca.cert)], { NODE_EXTRA_CA_CERTS: files.ca });
  assert.equal(otherPin.code, 6, 'the pin is the only certificate accepted, whatever the CAs');
});

test('mgmt_tls configuration errors are exit 2 before anything starts: a cert without its key, an unreadable file, a key of another certificate', async () => {
  const dir = tempDir();
  const a = await generate([{ name: 'commonName', value: 'a' }], { keyType: 'ec', algorithm: 'sha256' });
  const b = await generate([{ name: 'commonName', value: 'b' }], { keyType: 'ec', algorithm: 'sha256' });
  writeFileSync(join(dir, 'a.crt'), a.cert);
  writeFileSync(join(dir, 'b.key'), b.private);
  const cases: [string[], RegExp][] = [
    [['--mgmt-tls-cert', join(dir, 'a.crt')], /mgmt_tls_cert and mgmt_tls_key go together/],
    [['--mgmt-tls-cert', join(dir, 'missing.crt'), '--mgmt-tls-key', join(dir, 'b.key')], /mgmt_tls_cert .*missing\.crt: ENOENT/],
    [['--mgmt-tls-cert', join(dir, 'a.crt'), '--mgmt-tls-key', join(dir, 'b.key')], /b\.key is not the key of mgmt_tls_cert/],
    [['--mgmt-tls', 'self-signed', '--mgmt-tls-cert', join(dir, 'a.crt'), '--mgmt-tls-key', join(dir, 'b.key')], /mgmt_tls: self-signed makes its own certificate/],
  ];
  for (const [args, message] of cases) {
    const p = dk(['gateway', '--serv-port', '0', '--mgmt-port', '0', '--bind', '127.0.0.1', '--data-dir', join(dir, 'data'), ...args]);
    const r = await p.exited;
    assert.equal(r.code, 2, `${args.join(' ')}: ${p.err()}`);
    assert.match(p.err(), message);
    assert.equal(p.out(), '', 'nothing started, nothing printed');
  }
});
