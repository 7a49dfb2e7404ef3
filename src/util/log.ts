import { pino, type Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';

export type { Logger };

export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * How log lines look: what was asked for (`--log-format` or `DK_LOG_FORMAT`), else pretty for a
 * person at a terminal and JSON lines for everything else (a pipe, a file, journald, a collector).
 */
export function logFormat(asked: string | undefined, stderrIsTty: boolean): LogFormat {
  if (asked === undefined || asked === '') return stderrIsTty ? 'pretty' : 'json';
  if ((LOG_FORMATS as readonly string[]).includes(asked)) return asked as LogFormat;
  throw new RangeError(`log format "${asked}": must be ${LOG_FORMATS.join(' or ')}`);
}

/**
 * Logs on stderr (stdout stays free for what a command prints for the user), written
 * synchronously so that a line logged just before an exit is not lost. Pretty lines are made in
 * this thread by pino-pretty (no worker thread: log volume is low, and a single executable has
 * no transport files to load); colours only on a terminal.
 */
export function makeLogger(level: string, name: string, format: LogFormat = logFormat(process.env.DK_LOG_FORMAT, process.stderr.isTTY === true)): Logger {
  const opts = { level, name, base: { pid: process.pid }, formatters: { log: renameReserved } };
  if (format === 'json') return pino(opts, pino.destination({ fd: 2, sync: true }));
  return pino(opts, PinoPretty({ destination: 2, sync: true, colorize: process.stderr.isTTY === true, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l', singleLine: true }));
}

/** Keys every line already has (pino writes them first); a field of the same name is renamed, not written twice. */
const RESERVED = ['level', 'time', 'pid', 'hostname', 'name'] as const;

function renameReserved(o: Record<string, unknown>): Record<string, unknown> {
  if (!RESERVED.some((k) => k in o)) return o;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[(RESERVED as readonly string[]).includes(k) ? `${k}_` : k] = v;
  return out;
}

export const silentLogger: Logger = pino({ level: 'silent' });
