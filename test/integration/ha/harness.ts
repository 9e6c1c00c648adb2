/**
 * What the Redis fault tests share: a bounded load of admissions through the real webhook
 * handler (in-process, one RedisLeaseStore per webhook replica), an API server in memory that
 * holds a pod for every allowed admission (the pods the API server would have created), the
 * real controller watching it, and the checks every test ends with.
 */
import { Registry } from 'prom-client';
import { DEFAULTS } from '../../../src/config/config.js';
import { Controller, type ControllerOptions } from '../../../src/controller/controller.js';
import { createControllerMetrics } from '../../../src/controller/metrics.js';
import { kubeEvents } from '../../../src/k8s/events.js';
import { createLogger, silentLogger } from '../../../src/log/logger.js';
import type { Pool, PoolSet } from '../../../src/pool/pools-file.js';
import type { LeaseStore } from '../../../src/pool/store.js';
import { handleMutate, type WebhookDeps } from '../../../src/webhook/handlers.js';
import { NO_NAMESPACES } from '../../../src/webhook/namespaces.js';
import { applyAnnotationPatch } from '../../../src/webhook/patch.js';
import type { PatchOperation } from '../../../src/webhook/types.js';
import { reviewWith } from '../../fixtures/admission/load.js';
import { FakeApi } from '../../unit/controller/fake-api.js';

export const requireAll = process.env.PODLEASE_REQUIRE_ALL === '1';

export const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms));

/** Polls `check` every 25 ms until it holds, for at most `ms`. */
export const until = async (what: string, check: () => boolean, ms: number): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
};

export const webhookDeps = (
  store: LeaseStore,
  pools: PoolSet,
  storeTimeoutMs: number,
): WebhookDeps => ({
  store,
  pools,
  namespaces: NO_NAMESPACES,
  config: {
    leaseTtlMs: DEFAULTS.leaseTtlMs,
    storeTimeoutMs,
    bodyLimitBytes: 1 << 20,
    serviceAccount: DEFAULTS.serviceAccount,
    statefulSetCreators: DEFAULTS.statefulSetCreators,
  },
  log: silentLogger(),
  cleanupBudgetMs: 10_000,
});

export interface Admitted {
  readonly at: number;
  readonly uid: string;
  readonly name: string;
  readonly pool: string;
  readonly leaseId: string;
  readonly ip: string;
}

export interface Denied {
  readonly at: number;
  readonly code: number | undefined;
  readonly message: string;
}

/**
 * Admissions of Deployment pods, spread over the webhook replicas. An allowed one becomes a pod
 * in the API server at once, carrying the annotations of the answer's patch.
 */
export class Admissions {
  readonly allowed: Admitted[] = [];
  readonly denied: Denied[] = [];
  readonly #replicas: readonly WebhookDeps[];
  readonly #api: FakeApi;
  readonly #tag: string;
  readonly #annotate: (n: number) => Record<string, string> | null;
  #n = 0;

  /** `annotate`: the pod's own annotations for admission `n` (e.g. `podlease.io/pool`). */
  constructor(
    replicas: readonly WebhookDeps[],
    api: FakeApi,
    tag: string,
    annotate: (n: number) => Record<string, string> | null = () => null,
  ) {
    this.#replicas = replicas;
    this.#api = api;
    this.#tag = tag;
    this.#annotate = annotate;
  }

  async one(): Promise<boolean> {
    const n = this.#n++;
    const uid = `${this.#tag}-${n}`;
    const deps = this.#replicas[n % this.#replicas.length]!;
    const { review } = await handleMutate(
      reviewWith('create-pod-deployment', { uid, annotations: this.#annotate(n) }),
      { apiTimeoutMs: 10_000 },
      deps,
    );
    const r = review.response;
    if (r?.allowed !== true || r.patch === undefined) {
      this.denied.push({
        at: Date.now(),
        code: r?.status?.code,
        message: r?.status?.message ?? '',
      });
      return false;
    }
    const ops = JSON.parse(Buffer.from(r.patch, 'base64').toString()) as PatchOperation[];
    const annotations = applyAnnotationPatch({}, ops) ?? {};
    const lease = annotations['podlease.io/lease'] ?? '';
    const name = `web-7d9f8b6c5d-${this.#tag}-${n}`;
    this.#api.upsertPod({ uid: `pod-${uid}`, namespace: 'default', name, annotations });
    this.allowed.push({
      at: Date.now(),
      uid,
      name,
      pool: lease.slice(0, lease.indexOf('/')),
      leaseId: lease.slice(lease.indexOf('/') + 1),
      ip: annotations['podlease.io/ip'] ?? '',
    });
    return true;
  }

  /** `concurrency` admissions in flight until `stop()` or `maxMs`; a denial pauses 20 ms. */
  async run(concurrency: number, maxMs: number, stop: () => boolean): Promise<void> {
    const deadline = Date.now() + maxMs;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (!stop() && Date.now() < deadline) {
          if (!(await this.one())) await sleep(20);
        }
      }),
    );
  }

  allowedBetween(from: number, to: number): Admitted[] {
    return this.allowed.filter(a => a.at > from && a.at < to);
  }

  deniedWith(code: string): number {
    return this.denied.filter(d => d.message.includes(code)).length;
  }
}

/** A store whose successful `markReconciled` calls are timed (when each was sent). */
export const timedConfirmations = (
  store: LeaseStore,
): { store: LeaseStore; confirmedAt: number[] } => {
  const confirmedAt: number[] = [];
  const wrapped = new Proxy(store, {
    get(target, key) {
      if (key === 'markReconciled') {
        return async (pool: Pool, history: string): Promise<boolean> => {
          // The time the call is sent: the store cannot have confirmed before it.
          const sent = Date.now();
          const ok = await target.markReconciled(pool, history);
          if (ok) confirmedAt.push(sent);
          return ok;
        };
      }
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { store: wrapped, confirmedAt };
};

export const CONTROLLER_OPTIONS: ControllerOptions = {
  reconcileIntervalMs: 600_000,
  rebuildSettleMs: 300,
  expiryIntervalMs: 600_000,
  epochCheckMs: 200,
  workers: 8,
};

export interface RunningController {
  readonly controller: Controller;
  readonly registry: Registry;
  /** Leases the controller restored from pod annotations so far. */
  restored(): Promise<number>;
  stop(): Promise<void>;
}

/** The real controller, leading, on `store` and the in-memory API server. */
export const startController = async (
  store: LeaseStore,
  pools: PoolSet,
  api: FakeApi,
): Promise<RunningController> => {
  const registry = new Registry();
  const client = api.client();
  const log =
    process.env.PODLEASE_HA_LOG === undefined
      ? silentLogger()
      : createLogger({ level: process.env.PODLEASE_HA_LOG as 'warn' });
  const controller = new Controller({
    store,
    pools,
    client,
    log,
    metrics: createControllerMetrics(registry),
    events: kubeEvents(client, log, 'ha-test'),
    options: CONTROLLER_OPTIONS,
  });
  controller.start();
  controller.setLeader(true);
  const deadline = Date.now() + 10_000;
  while (!controller.synced()) {
    if (Date.now() > deadline) throw new Error('controller caches did not sync');
    await sleep(20);
  }
  return {
    controller,
    registry,
    restored: async () => {
      const m = (await registry.getMetricsAsJSON()).find(
        x => x.name === 'podlease_leases_restored_total',
      );
      return (m?.values ?? []).reduce((n, v) => n + v.value, 0);
    },
    stop: () => controller.stop(),
  };
};

/** Addresses held by two pods of the API server (none, or the test fails with them). */
export const duplicateAddresses = (api: FakeApi): string[] => {
  const seen = new Map<string, string>();
  const dup: string[] = [];
  for (const p of api.pods.values()) {
    const ip = p.annotations?.['podlease.io/ip'];
    if (ip === undefined) continue;
    if (seen.has(ip)) dup.push(`${ip}: ${seen.get(ip) ?? ''} and ${p.name}`);
    else seen.set(ip, p.name);
  }
  return dup;
};

/** Allowed admissions whose lease the store lacks, or holds at another address. */
export const missingLeases = async (
  store: LeaseStore,
  pool: Pool,
  allowed: readonly Admitted[],
): Promise<string[]> => {
  const byId = new Map((await store.leases(pool)).map(l => [l.id, l.ip]));
  return allowed
    .filter(a => a.pool === pool.name && byId.get(a.leaseId) !== a.ip)
    .map(a => `${a.name} ${a.leaseId} ${a.ip} (store: ${byId.get(a.leaseId) ?? 'none'})`);
};
