// Logging goes through pino. Keel never logs secrets or whole tool results: callers pass ids,
// names and sizes.

import { pino } from 'pino';

export type Logger = Pick<pino.Logger, 'debug' | 'info' | 'warn' | 'error' | 'child'>;

export function createLogger(options: { level?: string; destination?: number | string } = {}): Logger {
  const level = options.level ?? process.env.KEEL_LOG_LEVEL ?? 'warn';
  return pino({ level, base: undefined }, pino.destination(options.destination ?? 2));
}

export const silentLogger: Logger = pino({ level: 'silent' });
