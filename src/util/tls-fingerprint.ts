import { createHash, X509Certificate } from 'node:crypto';

/**
 * A certificate's SHA-256 fingerprint as OpenSSL and browsers print it: the hash of its DER
 * encoding, 32 bytes in upper-case hex pairs joined by colons (`openssl x509 -fingerprint -sha256`).
 */
export function certFingerprint(cert: X509Certificate | string | Buffer): string {
  return (cert instanceof X509Certificate ? cert : new X509Certificate(cert)).fingerprint256;
}

/**
 * A fingerprint as a person may paste it — with or without colons or spaces, any case, with or
 * without a `SHA256:` prefix — in the form certFingerprint gives; RangeError if it is not 32 bytes of hex.
 */
export function parseFingerprint(text: string): string {
  const hex = text.trim().replace(/^sha-?256[:=]?\s*/i, '').replace(/[:\s]/g, '');
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new RangeError('a SHA-256 fingerprint is 64 hex digits, in pairs with colons or without (the gateway prints it at start)');
  return hex.toUpperCase().match(/../g)!.join(':');
}

/** The SHA-256 of the certificate's public key (SPKI), base64: curl's `--pinnedpubkey sha256//…`. */
export function spkiPin(cert: X509Certificate | string | Buffer): string {
  const c = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  return createHash('sha256').update(c.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
}
