import type { Rendezvous } from '../rendezvous/rendezvous.ts';

/** What a RustDesk user types into the client's network settings for this gateway. */
export function rendezvousBanner(r: Rendezvous, publicHost: string): string {
  const p = r.ports();
  const relay = r.relayPort();
  const lines = [
    'RustDesk rendezvous is up. In the RustDesk client (Settings → Network → ID/Relay server):',
    `  ID server      ${publicHost}${p.port === 21116 ? '' : `:${String(p.port)}`}`,
    `  Relay server   ${relay === p.port! + 1 ? `(empty, or ${publicHost}:${relay})` : `${publicHost}:${relay}`}`,
    `  Key            ${r.keys.keys.publicKeyBase64}${r.enforcedKey === '' ? '    (not enforced: rendezvous.key is "")' : ''}`,
    `  (\`dk pubkey --rendezvous\` prints the Key again; it is id_ed25519.pub in the data dir)`,
  ];
  return lines.join('\n');
}
