/**
 * Time budgets. The API server tells the webhook how long it waits (`?timeout=10s`, its
 * `timeoutSeconds`); the webhook answers inside it, and caps every store call at the smaller of
 * the remaining budget and the configured store timeout, so a silent Redis gives a fast 503
 * rather than an API server timeout.
 */
import { parseDuration } from '../config/parse.js';
import { StoreUnavailableError } from '../pool/errors.js';

/** Time kept back from the API server's timeout to write the answer. */
export const answerMarginMs = (timeoutMs: number): number =>
  Math.max(20, Math.min(500, Math.floor(timeoutMs / 10)));

/** The `timeout` query parameter in ms, or undefined when absent or malformed. */
export const parseApiTimeout = (query: unknown): number | undefined => {
  if (typeof query !== 'string' || query === '') return undefined;
  const ms = parseDuration(query);
  return ms !== undefined && ms > 0 ? ms : undefined;
};

export class Deadline {
  readonly at: number;
  /** When the API server stops waiting for the answer (less the margin to write it). */
  readonly answerBy: number;
  private readonly now: () => number;
  constructor(at: number, now: () => number = Date.now, answerBy: number = Infinity) {
    this.at = at;
    this.now = now;
    this.answerBy = answerBy;
  }

  /** The budget for a request received at `start`: store timeout, inside the API server's. */
  static forRequest(
    start: number,
    storeTimeoutMs: number,
    apiTimeoutMs: number | undefined,
    now: () => number = Date.now,
  ): Deadline {
    const api = apiTimeoutMs === undefined ? Infinity : apiTimeoutMs - answerMarginMs(apiTimeoutMs);
    return new Deadline(start + Math.max(0, Math.min(storeTimeoutMs, api)), now, start + api);
  }

  /** The API server has given up on this request: an answer now would be one nobody reads. */
  tooLateToAnswer(): boolean {
    return this.now() >= this.answerBy;
  }

  remainingMs(): number {
    return Math.max(0, this.at - this.now());
  }
}

/** Thrown by `within` when the time is up; a StoreUnavailableError (503). */
export class StoreTimeoutError extends StoreUnavailableError {
  readonly timeoutMs: number;
  constructor(what: string, timeoutMs: number) {
    super(`no answer to ${what} within ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}

/** Resolves as `promise` does, or rejects with StoreTimeoutError after `ms`. */
export const within = async <T>(promise: Promise<T>, ms: number, what: string): Promise<T> => {
  if (ms <= 0) {
    promise.catch(() => undefined);
    throw new StoreTimeoutError(what, 0);
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new StoreTimeoutError(what, ms));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
};
