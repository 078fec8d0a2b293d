/** Structured JSON logs on stdout (pino), as log collectors in a cluster expect them. */
import pino, { type Logger } from 'pino';
import type { LogLevel } from '@modelship/contract';

export function createLogger(level: LogLevel = 'info', name = 'modelship'): Logger {
  // Synchronous writes: nothing is logged per request, and a line about a failure must reach the collector even
  // when the process ends right after it (the drain timeout ends with SIGKILL).
  return pino({ name, level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 1, sync: true }));
}
