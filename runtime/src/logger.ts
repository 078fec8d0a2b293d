/** Structured JSON logs on stdout (pino), as log collectors in a cluster expect them. */
import pino, { type Logger } from 'pino';
import type { LogLevel } from '../../lib/contract/settings';

export function createLogger(level: LogLevel = 'info', name = 'modelship'): Logger {
  return pino({ name, level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}
