/**
 * pino, JSON in production and readable lines in development. Secrets never
 * reach a log line: the paths below are redacted wherever they appear.
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export const redactPaths = [
  'password',
  '*.password',
  'pass',
  '*.pass',
  'token',
  '*.token',
  'access_token',
  '*.access_token',
  'refresh_token',
  '*.refresh_token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'req.headers.authorization',
];

export interface LoggerOptions {
  readonly level: string;
  readonly format: 'json' | 'pretty';
  /** Where lines go; stdout by default. */
  readonly destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const base = {
    level: options.level,
    base: { service: 'smtp-gateway' },
    redact: { paths: redactPaths, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (options.format === 'pretty') {
    return pino(
      base,
      pretty({
        colorize: !process.env['NO_COLOR'] && Boolean((process.stdout as { isTTY?: boolean }).isTTY),
        translateTime: 'HH:MM:ss.l',
        ignore: 'pid,hostname,service',
        destination: options.destination ?? 1,
        sync: true,
      }),
    );
  }
  return options.destination ? pino(base, options.destination) : pino(base);
}

export type { Logger };
