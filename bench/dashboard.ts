/**
 * What the dashboard costs a gateway (issue 22), runnable alone:
 *   node bench/dashboard.ts [--runs N] [--baseline DIR]
 * Each run starts a gateway in a fresh child process and reports the time from process start to
 * "listening" and the RSS after a full GC: first never browsed (the page's bundle is not loaded:
 * routes.ts imports it on the first request), then after the page, its script and its style
 * were served once (gzip copies cached). With --baseline, a checkout without the dashboard (e.g.
 * /work/main before issue 22) is measured the same way for comparison. Medians of N runs (5).
 * It asserts nothing; it prints.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
};

interface Result { startMs: number; rssIdle: number; rssBrowsed: number; heapIdle: number; heap: number; dashboard: boolean }

/** The child: start a gateway from `root`, measure, browse, measure, stop; one JSON line out. */
async function child(root: string): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc!;
  const { startGateway } = await import(join(root, 'src/gateway/serve.ts')) as typeof import('../src/gateway/serve.ts');
  const { GatewayConfigSchema } = await import(join(root, 'src/config/gateway-config.ts')) as typeof import('../src/config/gateway-config.ts');
  const { silentLogger } = await import(join(root, 'src/util/log.ts')) as typeof import('../src/util/log.ts');
  const dir = mkdtempSync(join(tmpdir(), 'dk-bench-dash-'));
  const config = GatewayConfigSchema.parse({ bind: '127.0.0.1', serv_port: 0, mgmt_port: 0, access_ports: '39000-39010', data_dir: dir, admin_token: 'bench-admin-token-0123456789abcdef', backends: { home: { key: 'bench-backend-key' } } });
  const g = await startGateway(config, silentLogger);
  const startMs = performance.now();
  const rss = (): number => { gc(); gc(); return process.memoryUsage().rss; };
  // The measuring client (fetch, undici) is loaded before the first figure, so it is in both.
  await (await fetch(`http://127.0.0.1:${g.mgmtPort}/healthz`)).arrayBuffer();
  const rssIdle = rss();
  const heapIdle = process.memoryUsage().heapUsed;
  // The same three requests either way (a checkout without the dashboard answers them 404).
  const page = await fetch(`http://127.0.0.1:${g.mgmtPort}/`, { headers: { accept: 'text/html', 'accept-encoding': 'gzip' } });
  const dashboard = page.headers.get('content-type')?.startsWith('text/html') === true;
  await page.arrayBuffer();
  for (const a of ['app.js', 'app.css']) await (await fetch(`http://127.0.0.1:${g.mgmtPort}/dashboard/${a}`, { headers: { 'accept-encoding': 'gzip' } })).arrayBuffer();
  const rssBrowsed = rss();
  const heap = process.memoryUsage().heapUsed;
  await g.stop();
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify({ startMs, rssIdle, rssBrowsed, heapIdle, heap, dashboard } satisfies Result)}\n`);
}

function measure(root: string, runs: number): Result[] {
  const out: Result[] = [];
  for (let i = 0; i < runs; i++) {
    const line = execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', root], { encoding: 'utf8' });
    out.push(JSON.parse(line.trim().split('\n').at(-1)!) as Result);
  }
  return out;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mib = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`;

if (process.argv.includes('--child')) {
  await child(process.argv[process.argv.indexOf('--child') + 1]!);
} else {
  const runs = Number(arg('--runs') ?? 5);
  const here = fileURLToPath(new URL('..', import.meta.url));
  const rows: [string, Result[]][] = [];
  const baseline = arg('--baseline');
  if (baseline) rows.push([`baseline (${baseline})`, measure(baseline, runs)]);
  rows.push(['this checkout', measure(here, runs)]);
  process.stdout.write(`dashboard cost, medians of ${runs} runs (Node ${process.version}):\n`);
  for (const [name, r] of rows) {
    const m = (f: (x: Result) => number): number => median(r.map(f));
    process.stdout.write(`  ${name}${r[0]!.dashboard ? '' : ' (no dashboard)'}: start ${m((x) => x.startMs).toFixed(0)} ms; `
      + `RSS ${mib(m((x) => x.rssIdle))} at start, ${mib(m((x) => x.rssBrowsed))} after GET /, app.js, app.css; `
      + `JS heap ${mib(m((x) => x.heapIdle))} → ${mib(m((x) => x.heap))} (+${(m((x) => x.heap - x.heapIdle) / 1024).toFixed(0)} KiB)\n`);
  }
}
