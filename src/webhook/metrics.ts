/**
 * Prometheus metrics of the webhook (prom-client): admissions by endpoint, outcome, pool and
 * status code, a latency histogram, store errors, and pool gauges read from `store.stats` on
 * scrape through a short cache.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PoolSet } from '../pool/pools-file.js';
import type { LeaseStore, PoolStats } from '../pool/store.js';
import { within } from './deadline.js';

export type Endpoint = 'mutate' | 'validate';
export type Outcome = 'allowed' | 'skipped' | 'dry_run' | 'denied';

export interface AdmissionObservation {
  readonly endpoint: Endpoint;
  readonly outcome: Outcome;
  /** Pools involved, comma-joined ('' when none). */
  readonly pool: string;
  /** `status.code` of the answer, 200 when allowed. */
  readonly code: number;
  readonly seconds: number;
}

export interface WebhookMetrics {
  readonly registry: Registry;
  observeAdmission(a: AdmissionObservation): void;
  storeError(operation: string, reason: string): void;
}

export interface MetricsOptions {
  readonly store: LeaseStore;
  readonly pools: PoolSet;
  readonly statsCacheMs: number;
  readonly statsTimeoutMs: number;
  /** `--reuse-cooldown`: addresses released within it count as cooling, not free. */
  readonly reuseCooldownMs?: number | undefined;
  /** Node process metrics (off in unit tests). */
  readonly defaultMetrics?: boolean | undefined;
}

/** Fetches every pool's stats at most once per `cacheMs`; failures keep the last good values. */
const statsCache = (
  options: MetricsOptions,
  onError: (err: unknown) => void,
): (() => Promise<readonly PoolStats[]>) => {
  let at = -Infinity;
  let last: readonly PoolStats[] = [];
  let inflight: Promise<readonly PoolStats[]> | undefined;
  const refresh = async (): Promise<readonly PoolStats[]> => {
    try {
      const pools = [...options.pools.pools.values()];
      last = await within(
        Promise.all(
          pools.map(p => options.store.stats(p, { reuseCooldownMs: options.reuseCooldownMs })),
        ),
        options.statsTimeoutMs,
        'stats',
      );
      at = Date.now();
    } catch (err) {
      onError(err);
    } finally {
      inflight = undefined;
    }
    return last;
  };
  return () => {
    if (Date.now() - at < options.statsCacheMs) return Promise.resolve(last);
    inflight ??= refresh();
    return inflight;
  };
};

export const createMetrics = (options: MetricsOptions): WebhookMetrics => {
  const registry = new Registry();
  if (options.defaultMetrics === true)
    collectDefaultMetrics({ register: registry, prefix: 'podlease_' });
  const admissions = new Counter({
    name: 'podlease_admissions_total',
    help: 'Admission requests answered, by endpoint, outcome, pool and status code',
    labelNames: ['endpoint', 'outcome', 'pool', 'code'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'podlease_admission_duration_seconds',
    help: 'Time to answer an admission request',
    labelNames: ['endpoint', 'outcome'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const storeErrors = new Counter({
    name: 'podlease_store_errors_total',
    help: 'Lease store calls that failed, by operation and reason',
    labelNames: ['operation', 'reason'] as const,
    registers: [registry],
  });
  const stats = statsCache(options, err => {
    storeErrors.inc({ operation: 'stats', reason: err instanceof Error ? err.name : 'unknown' });
  });
  const gauge = (name: string, help: string, pick: (s: PoolStats) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['pool'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        for (const s of await stats()) this.set({ pool: s.pool }, pick(s));
      },
    });
  };
  gauge('podlease_pool_size', 'Allocatable addresses of the pool', s => s.size);
  gauge('podlease_pool_leased', 'Addresses held by a lease or a sticky reservation', s => s.leased);
  gauge('podlease_pool_free', 'Addresses free to lease now', s => s.free);
  gauge('podlease_pool_reserved', 'Sticky reservations', s => s.reserved);
  gauge(
    'podlease_pool_cooling',
    'Released addresses resting for --reuse-cooldown before they are leased again',
    s => s.cooling,
  );
  return {
    registry,
    observeAdmission(a) {
      admissions.inc({
        endpoint: a.endpoint,
        outcome: a.outcome,
        pool: a.pool,
        code: String(a.code),
      });
      latency.observe({ endpoint: a.endpoint, outcome: a.outcome }, a.seconds);
    },
    storeError(operation, reason) {
      storeErrors.inc({ operation, reason });
    },
  };
};
