/** Runs the external load generators (iperf3, wrk) and parses what they print. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface IperfResult { mibps: number; bytes: number }

/** One iperf3 client run against host:port; `reverse` makes the server send (download). */
export async function iperf(port: number, opts: { seconds: number; reverse?: boolean; streams?: number }): Promise<IperfResult> {
  try {
    return await iperfOnce(port, opts);
  } catch (e) {
    // iperf3's server takes one test at a time and can still be tearing the last one down.
    process.stderr.write(`  ${(e as Error).message}; retrying once in 2 s\n`);
    await new Promise((r) => setTimeout(r, 2000));
    return iperfOnce(port, opts);
  }
}

async function iperfOnce(port: number, opts: { seconds: number; reverse?: boolean; streams?: number }): Promise<IperfResult> {
  const args = ['-c', '127.0.0.1', '-p', String(port), '-t', String(opts.seconds), '-O', '1', '-J'];
  if (opts.reverse) args.push('-R');
  if (opts.streams && opts.streams > 1) args.push('-P', String(opts.streams));
  const { stdout } = await run('iperf3', args, { maxBuffer: 64 * 2 ** 20, timeout: (opts.seconds + 30) * 1000 });
  const j = JSON.parse(stdout) as { error?: string; end: { sum_received: { bits_per_second: number; bytes: number } } };
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  return { mibps: j.end.sum_received.bits_per_second / 8 / 2 ** 20, bytes: j.end.sum_received.bytes };
}

export interface WrkResult { rps: number; p50: number; p99: number; errors: number }

function ms(v: string, unit: string): number {
  const n = Number(v);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : n;
}

/** wrk against http://127.0.0.1:port/; latency in ms. `close` sends Connection: close (one TCP connection per request). */
export async function wrk(port: number, opts: { seconds: number; connections: number; close?: boolean }): Promise<WrkResult> {
  const args = ['-t', '1', '-c', String(opts.connections), '-d', `${opts.seconds}s`, '--latency', '--timeout', '5s'];
  if (opts.close) args.push('-H', 'Connection: close');
  args.push(`http://127.0.0.1:${port}/`);
  const { stdout } = await run('wrk', args, { timeout: (opts.seconds + 30) * 1000 });
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(stdout);
    if (!m) throw new Error(`wrk printed no ${p}% latency:\n${stdout}`);
    return ms(m[1]!, m[2]!);
  };
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  if (!rps) throw new Error(`wrk printed no rate:\n${stdout}`);
  const err = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
  const errors = (err ? err.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + (non2xx ? Number(non2xx[1]) : 0);
  return { rps: Number(rps[1]), p50: pct('50'), p99: pct('99'), errors };
}
