/**
 * JSON logs (pino). One root logger per process, created in `bin/` from the config and passed
 * down; modules take a `Logger` and add their own bindings with `child`.
 */
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  readonly level: LogLevel;
  readonly name?: string | undefined;
  /** Defaults to stdout. */
  readonly destination?: DestinationStream | undefined;
}

export const createLogger = (options: LoggerOptions): Logger => {
  const base = { level: options.level, name: options.name ?? 'podlease' };
  return options.destination === undefined ? pino(base) : pino(base, options.destination);
};

/** A logger that drops everything (tests, CLI commands printing their own output). */
export const silentLogger = (): Logger => pino({ level: 'silent' });
