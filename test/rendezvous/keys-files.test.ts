import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  loadOrCreateKeyFiles, openCombined, parsePublicKeyFile, parseSecretKeyFile, PUBLIC_KEY_FILE, SECRET_KEY_FILE, signCombined,
} from '../../src/rendezvous/keys.ts';
import { KeyFileError } from '../../src/rendezvous/errors.ts';

// RFC 8032 §7.1 TEST 1 (Ed25519): seed, public key, and the signature of the empty message.
// libsodium and Node both implement RFC 8032, so hbbs makes this same deterministic signature.
const SEED = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex');
const PK = Buffer.from('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', 'hex');
const SIG_EMPTY = 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';

const root = mkdtempSync(join(tmpdir(), 'dk-rdv-keys-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
function freshDir(): string {
  const dir = join(root, String(n++));
  mkdirSync(dir);
  return dir;
}

/** The two files as hbbs's gen_sk writes them: base64 of seed ‖ pk, base64 of pk, no newline. */
function writeHbbsFiles(dir: string, secret: Buffer | string, pub?: Buffer | string): void {
  writeFileSync(join(dir, SECRET_KEY_FILE), typeof secret === 'string' ? secret : secret.toString('base64'));
  if (pub !== undefined) writeFileSync(join(dir, PUBLIC_KEY_FILE), typeof pub === 'string' ? pub : pub.toString('base64'));
}

test('hbbs-format files from fixed bytes load; signatures verify with the .pub key and match RFC 8032', async () => {
  const dir = freshDir();
  writeHbbsFiles(dir, Buffer.concat([SEED, PK]), PK);
  const { keys, created, wrotePublicFile } = await loadOrCreateKeyFiles(dir);
  assert.deepEqual([created, wrotePublicFile], [false, false]);
  assert.deepEqual(keys.publicKey, PK);
  assert.equal(keys.publicKeyBase64, '11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=');
  const pub = parsePublicKeyFile(readFileSync(join(dir, PUBLIC_KEY_FILE), 'utf8'));
  const signedEmpty = signCombined(new Uint8Array(0), keys);
  assert.equal(signedEmpty.toString('hex'), SIG_EMPTY); // combined form: signature ‖ (empty) message
  const signed = signCombined(Buffer.from('hello hbbs'), keys);
  assert.equal(openCombined(signed, pub).toString(), 'hello hbbs');
});

test('a trailing newline in id_ed25519 is accepted, as gen_sk trims', async () => {
  const dir = freshDir();
  writeHbbsFiles(dir, `${Buffer.concat([SEED, PK]).toString('base64')}\n`, `${PK.toString('base64')}\n`);
  assert.deepEqual((await loadOrCreateKeyFiles(dir)).keys.publicKey, PK);
});

test('no files: a pair is created in hbbs format, the secret 0600; loading again gives the same key', async () => {
  const dir = join(freshDir(), 'sub'); // the directory is created too
  const first = await loadOrCreateKeyFiles(dir);
  assert.equal(first.created, true);
  const skText = readFileSync(join(dir, SECRET_KEY_FILE), 'utf8');
  const pkText = readFileSync(join(dir, PUBLIC_KEY_FILE), 'utf8');
  assert.match(skText, /^[A-Za-z0-9+/]{86}==$/); // 64 bytes, no newline
  assert.match(pkText, /^[A-Za-z0-9+]{43}=$/); // 32 bytes, no newline, no '/' (gen_sk's retry)
  assert.equal(statSync(join(dir, SECRET_KEY_FILE)).mode & 0o777, 0o600);
  assert.equal(first.secretFileTooOpen, false);
  assert.deepEqual(Buffer.from(skText, 'base64').subarray(32), Buffer.from(pkText, 'base64'));
  const second = await loadOrCreateKeyFiles(dir);
  assert.equal(second.created, false);
  assert.deepEqual(second.keys.secretKey, first.keys.secretKey);
});

test('generation retries while the public key\'s base64 has a "/"', async () => {
  let calls = 0;
  // RFC 8032 TEST 1's public key base64 contains '/', so a source that gives it first must retry.
  const random = (k: number): Uint8Array => (calls++ === 0 ? SEED : Buffer.alloc(k, 7));
  const { keys } = await loadOrCreateKeyFiles(freshDir(), { random });
  assert.equal(calls, 2);
  assert.ok(!keys.publicKeyBase64.includes('/'));
});

test('id_ed25519 without .pub: the .pub is written from it', async () => {
  const dir = freshDir();
  writeHbbsFiles(dir, Buffer.concat([SEED, PK]));
  const r = await loadOrCreateKeyFiles(dir);
  assert.equal(r.wrotePublicFile, true);
  assert.equal(readFileSync(join(dir, PUBLIC_KEY_FILE), 'utf8'), PK.toString('base64'));
});

test('a world-readable id_ed25519 (hbbs writes 0644) is reported, not silently accepted', async () => {
  const dir = freshDir();
  writeHbbsFiles(dir, Buffer.concat([SEED, PK]), PK);
  chmodSync(join(dir, SECRET_KEY_FILE), 0o644);
  assert.equal((await loadOrCreateKeyFiles(dir)).secretFileTooOpen, true);
});

test('malformed key files give KeyFileError naming the file', async () => {
  const cases: [string, string | Buffer, string | Buffer | undefined, RegExp][] = [
    ['not base64', 'this is not a key!', undefined, /malformed private key/],
    ['32 bytes instead of 64', SEED, undefined, /malformed private key/],
    ['OpenSSH key (rustdesk-server#678)', '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n', undefined, /PEM\/OpenSSH/],
    ['public half not the seed\'s', Buffer.concat([SEED, Buffer.alloc(32, 1)]), undefined, /does not belong to its seed/],
    ['.pub of another key', Buffer.concat([SEED, PK]), Buffer.alloc(32, 2), /does not match id_ed25519/],
    ['.pub not 32 bytes', Buffer.concat([SEED, PK]), 'AAAA', /malformed public key/],
  ];
  for (const [why, sk, pk, message] of cases) {
    const dir = freshDir();
    writeHbbsFiles(dir, sk, pk);
    await assert.rejects(loadOrCreateKeyFiles(dir), (e) => e instanceof KeyFileError && e.code === 'RDV_KEY_FILE' && message.test(e.message) && e.path.startsWith(dir), why);
  }
  assert.throws(() => parseSecretKeyFile('AAAA'), KeyFileError);
});
