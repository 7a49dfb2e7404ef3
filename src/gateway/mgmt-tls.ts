import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../config/errors.ts';
import type { MgmtTlsMode } from '../config/gateway-config.ts';
import { certFingerprint, spkiPin } from '../util/tls-fingerprint.ts';

/** The management port's certificate, as the HTTPS server and the start banner need it. */
export interface MgmtTls {
  cert: string;
  key: string;
  /** SHA-256 of the certificate, `AB:CD:…`: what `--api-fingerprint` pins. */
  fingerprint: string;
  /** SHA-256 of its public key, base64: what `curl --pinnedpubkey sha256//…` pins. */
  spki: string;
  certFile: string;
  selfSigned: boolean;
}

export const SELF_SIGNED_CERT = 'mgmt_tls_cert.pem';
export const SELF_SIGNED_KEY = 'mgmt_tls_key.pem';
/**
 * The pin, not a CA, is what makes the self-signed certificate trusted, and a new certificate
 * would break every pinned CLI: so it is made to outlast the installation, not to be rotated.
 */
const SELF_SIGNED_YEARS = 20;

/** The certificate and key for `mode` (null: plain HTTP); the self-signed one is made in dataDir if absent. */
export async function loadMgmtTls(mode: MgmtTlsMode, dataDir: string): Promise<MgmtTls | null> {
  if (mode.mode === 'off') return null;
  if (mode.mode === 'files') return fromFiles(mode.cert, mode.key, false, 'mgmt_tls_cert', 'mgmt_tls_key');
  const certFile = join(dataDir, SELF_SIGNED_CERT);
  const keyFile = join(dataDir, SELF_SIGNED_KEY);
  const have = [existsSync(certFile), existsSync(keyFile)];
  if (have[0] !== have[1]) {
    throw new ConfigError(`${have[0] ? certFile : keyFile} is there without ${have[0] ? keyFile : certFile}: move it away to make a new certificate (CLIs that pinned the old fingerprint must pin the new one)`);
  }
  if (!have[0]) await makeSelfSigned(certFile, keyFile);
  return fromFiles(certFile, keyFile, true, certFile, keyFile);
}

async function makeSelfSigned(certFile: string, keyFile: string): Promise<void> {
  // Loaded only here, once per data dir: it takes 100-200 ms to load, which every `dk` command would pay.
  const { generate } = await import('selfsigned');
  const notBefore = new Date(Date.now() - 24 * 3600_000); // a client whose clock is a little behind
  const notAfter = new Date(notBefore);
  notAfter.setFullYear(notAfter.getFullYear() + SELF_SIGNED_YEARS);
  // The names matter only to clients that verify it as a CA-less trust anchor (curl --cacert);
  // the dk CLI pins the fingerprint and checks no name.
  const names = [...new Set(['localhost', hostname()])].map((value) => ({ type: 2 as const, value }));
  const pems = await generate([{ name: 'commonName', value: `DoorKeeper gateway ${hostname()}` }], {
    keyType: 'ec', curve: 'P-256', algorithm: 'sha256', notBeforeDate: notBefore, notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [...names, { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }] },
    ],
  });
  writeFileSync(keyFile, pems.private, { mode: 0o600, flag: 'wx' });
  writeFileSync(certFile, pems.cert, { mode: 0o644, flag: 'wx' });
}

function fromFiles(certFile: string, keyFile: string, selfSigned: boolean, certName: string, keyName: string): MgmtTls {
  const read = (file: string, what: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (e) {
      throw new ConfigError(`${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}: cannot read it`);
    }
  };
  const cert = read(certFile, certName);
  const key = read(keyFile, keyName);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    throw new ConfigError(`${certName} ${certFile}: not a PEM certificate (${(e as Error).message})`);
  }
  let matches: boolean;
  try {
    matches = x509.checkPrivateKey(createPrivateKey(key));
  } catch (e) {
    throw new ConfigError(`${keyName} ${keyFile}: not a PEM private key without a passphrase (${(e as Error).message})`);
  }
  if (!matches) throw new ConfigError(`${keyName} ${keyFile} is not the key of ${certName} ${certFile}`);
  return { cert, key, fingerprint: certFingerprint(x509), spki: spkiPin(x509), certFile, selfSigned };
}
