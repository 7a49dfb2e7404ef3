import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { test } from 'node:test';
import { E2ePath } from '../../src/connect/e2e-path.ts';
import { readLine } from '../../src/connect/protocol.ts';
import { generateKeyPair } from '../../src/link/crypto.ts';
import { LinkServer } from '../../src/link/server.ts';
import type { LinkStream } from '../../src/link/stream.ts';
import { e2eLine } from '../../src/p2p/e2e-messages.ts';
import { RELAY_HEADER_BYTES } from '../../src/p2p/relay-header.ts';
import { generateEd25519 } from '../../src/p2p/ticket.ts';
import { silentLogger } from '../../src/util/log.ts';
import { relayJoinServer } from '../helpers/e2e.ts';
import { waitFor } from '../helpers/net.ts';

/**
 * The client's end-to-end path lives only as long as its control link to the gateway (docs/p2p.md
 * §9): that is where the gateway keeps checking the client may still reach the target, and where
 * relays for a resume come from. A control link that ends while the link to the agent is being
 * opened must end that link too, not hand it over as if all were well.
 */
test('a control link that ends while the agent is answering the ticket: open() fails and the end-to-end link is closed', async (t) => {
  // The "gateway": a control link played by hand, and serv_port where the relay join lands at a link server with the agent's key.
  const agentKey = generateKeyPair();
  let agentSide: LinkStream | null = null;
  let control: Duplex | null = null;
  const server = new LinkServer<Socket>({
    key: agentKey,
    onStream: (stream) => {
      agentSide = stream;
      stream.on('error', () => undefined);
      void readLine(stream, 5000).then(() => {
        // The control link ends just as the agent accepts the ticket.
        control!.destroy();
        stream.write(e2eLine({ ok: true }));
      });
    },
  });
  const tcp = await relayJoinServer((s, head) => void server.handle(s, head.subarray(RELAY_HEADER_BYTES)));
  t.after(() => { tcp.close(); server.close(); });
  control = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      // Every request is a relay request here: answer it with a token.
      if (chunk.toString().includes('"relay"')) control!.push(e2eLine({ t: 'relay', token: '00'.repeat(16) }));
      cb();
    },
  });
  const key = generateEd25519();
  const claims = { id: 'ab'.repeat(16) };
  const ticket = `${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${Buffer.alloc(64).toString('base64url')}`;
  const path = new E2ePath({
    control: control as unknown as LinkStream,
    grant: { agent_key: agentKey.publicRaw.toString('base64url'), ticket, direct: false },
    clientKey: key.privateKey, gatewayHost: '127.0.0.1', gatewayPort: tcp.port,
    resumeForMs: 1000, log: silentLogger, startedAt: performance.now(),
  });
  await assert.rejects(path.open(), /ended|closed/);
  assert.equal(path.stream, null, 'no end-to-end link handed over');
  await waitFor(() => agentSide?.destroyed === true, 5000, 'the agent\'s end of the link closed');
});
