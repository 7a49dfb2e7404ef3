import { pino, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs on stderr (stdout stays free for what a command prints for the user). */
export function makeLogger(level: string, name: string): Logger {
  return pino({ level, name, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
}

export const silentLogger: Logger = pino({ level: 'silent' });
