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
  /** Defaults to stdout, buffered (see BUFFER_BYTES). */
  readonly destination?: DestinationStream | undefined;
}

/**
 * Stdout is written in chunks of up to this many bytes instead of one write per line: a write
 * per admission costs more than the admission. Call `logger.flush()` before exiting.
 */
export const BUFFER_BYTES = 4_096;

/** Longest time a buffered line waits before it is written. */
export const FLUSH_INTERVAL_MS = 250;

export const createLogger = (options: LoggerOptions): Logger => {
  const base = { level: options.level, name: options.name ?? 'podlease' };
  if (options.destination !== undefined) return pino(base, options.destination);
  const destination = pino.destination({ dest: 1, sync: false, minLength: BUFFER_BYTES });
  setInterval(() => {
    destination.flush();
  }, FLUSH_INTERVAL_MS).unref();
  process.once('exit', () => {
    try {
      destination.flushSync();
    } catch {
      // stdout gone or busy: nothing more can be done at exit
    }
  });
  return pino(base, destination);
};

/** A logger that drops everything (tests, CLI commands printing their own output). */
export const silentLogger = (): Logger => pino({ level: 'silent' });
