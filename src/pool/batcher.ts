/**
 * Groups concurrent calls for one key (a pool) into batches, each run as one call of `run`:
 * the Redis store sends one allocate-8.lua call per batch instead of one per allocation
 * (docs/redis.md, "Allocation batching").
 *
 * Flush policy:
 * - a call for an idle key (nothing queued, no batch in flight, no batch of several answered in
 *   this event-loop turn) is sent at once, alone: a lone allocation waits for no timer and no
 *   other caller;
 * - otherwise it is queued, and the queue is sent on the next `setImmediate`, after the I/O
 *   callbacks and microtasks of this turn, in batches of at most `maxBatch`, however many are in
 *   flight already. A batch of several that is answered also holds the key until then, so the
 *   callers its answers wake up (who typically call again at once) go together in the next
 *   batch rather than the first alone and the rest after it;
 * - `flushNow` sends what is queued at once: the store calls it before any other command for
 *   the pool, so a command issued after an allocation (the webhook's release when its deadline
 *   gave up on the allocation) is written to the connection after it, as without batching.
 *
 * So no call waits longer than until the next check phase of the event loop, and `run` is called
 * synchronously at the moment a batch is sent.
 *
 * Each call gets the result `run` gives for its position, or, when `run` rejects (one Redis call
 * failed), that rejection: every call of the batch fails, none is left unanswered.
 */

export interface BatcherOptions<I, R> {
  /** Runs one batch of one key; one result per item, in item order. */
  readonly run: (key: string, items: readonly I[]) => Promise<readonly R[]>;
  /** Largest batch (1: every call is sent alone). */
  readonly maxBatch: number;
}

/** Counters since the batcher was made: batches sent, calls in them, the largest batch. */
export interface BatchStats {
  readonly batches: number;
  readonly items: number;
  readonly largest: number;
}

interface Waiter<I, R> {
  readonly item: I;
  readonly resolve: (r: R) => void;
  readonly reject: (err: unknown) => void;
}

interface KeyState<I, R> {
  queue: Waiter<I, R>[];
  inFlight: number;
  scheduled: boolean;
}

export class Batcher<I, R> {
  readonly #options: BatcherOptions<I, R>;
  /** Per key; kept once made (the store's keys are its pools: a few). */
  readonly #keys = new Map<string, KeyState<I, R>>();
  #batches = 0;
  #items = 0;
  #largest = 0;

  constructor(options: BatcherOptions<I, R>) {
    if (!(options.maxBatch >= 1)) throw new Error('batcher: maxBatch must be at least 1');
    this.#options = options;
  }

  get stats(): BatchStats {
    return { batches: this.#batches, items: this.#items, largest: this.#largest };
  }

  submit(key: string, item: I): Promise<R> {
    let state = this.#keys.get(key);
    if (state === undefined) {
      state = { queue: [], inFlight: 0, scheduled: false };
      this.#keys.set(key, state);
    }
    const s = state;
    return new Promise<R>((resolve, reject) => {
      const waiter = { item, resolve, reject };
      if (s.inFlight === 0 && s.queue.length === 0 && !s.scheduled) {
        this.#send(key, s, [waiter]);
        return;
      }
      s.queue.push(waiter);
      this.#schedule(key, s);
    });
  }

  /** Sends what is queued for `key` now, in order, ahead of anything the caller sends next. */
  flushNow(key: string): void {
    const s = this.#keys.get(key);
    if (s !== undefined) this.#flush(key, s);
  }

  #schedule(key: string, s: KeyState<I, R>): void {
    if (s.scheduled) return;
    s.scheduled = true;
    setImmediate(() => {
      s.scheduled = false;
      this.#flush(key, s);
    });
  }

  #flush(key: string, s: KeyState<I, R>): void {
    while (s.queue.length > 0) this.#send(key, s, s.queue.splice(0, this.#options.maxBatch));
  }

  #send(key: string, s: KeyState<I, R>, batch: Waiter<I, R>[]): void {
    s.inFlight++;
    this.#batches++;
    this.#items += batch.length;
    if (batch.length > this.#largest) this.#largest = batch.length;
    const settle = (results: readonly R[] | undefined, err?: unknown): void => {
      s.inFlight--;
      batch.forEach((w, n) => {
        if (results === undefined) {
          w.reject(err);
        } else if (n < results.length) {
          w.resolve(results[n] as R);
        } else {
          w.reject(new Error(`batch of ${batch.length} answered ${results.length} results`));
        }
      });
      // Several callers woken at once (they typically call again at once) go together on the
      // next turn; a lone one may go straight away (no extra turn for one allocation at a time).
      if (batch.length > 1 || s.queue.length > 0) this.#schedule(key, s);
    };
    let running: Promise<readonly R[]>;
    try {
      running = this.#options.run(
        key,
        batch.map(w => w.item),
      );
    } catch (err) {
      settle(undefined, err);
      return;
    }
    running.then(
      results => {
        settle(results);
      },
      (err: unknown) => {
        settle(undefined, err);
      },
    );
  }
}
