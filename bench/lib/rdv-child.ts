/**
 * The rendezvous under test, alone in its own process (one core, its own memory): started with a
 * fresh data dir and free ports, it prints {"ports": …} on stdout and then answers IPC messages:
 * "rss" → {rss, heap} after a full GC (run with --expose-gc).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { RendezvousConfigSchema } from '../../src/config/rendezvous-config.ts';
import { Rendezvous } from '../../src/rendezvous/rendezvous.ts';
import { openDb } from '../../src/store/db.ts';
import { SqlitePeerStore } from '../../src/store/sqlite-peer-store.ts';
import { silentLogger } from '../../src/util/log.ts';

const dir = mkdtempSync(join(tmpdir(), 'dk-bench-rdv-'));
const db = openDb(dir);
const rdv = await Rendezvous.start({
  // The bench registers 100,000 ids from a handful of loopback addresses: the per-address
  // registration limits are raised for it, everything else is the default.
  config: RendezvousConfigSchema.parse({ port: 0, register_per_minute: 1e6, ids_per_ip_per_day: 1e6, forward_per_ip: 0 }),
  bind: '127.0.0.1', dataDir: dir, repo: new SqlitePeerStore(db), registry: new Registry(), log: silentLogger, trustedProxies: null,
  audit: () => undefined,
});
process.stdout.write(JSON.stringify({ ports: rdv.ports(), dir }) + '\n');
process.on('message', (m) => {
  if (m === 'rss') {
    (globalThis as { gc?: () => void }).gc?.();
    const u = process.memoryUsage();
    process.send?.({ rss: u.rss, heap: u.heapUsed, heapTotal: u.heapTotal, external: u.external, peers: rdv.table.size });
  } else if (m === 'stop') {
    void rdv.close().then(() => process.exit(0));
  }
});
