/**
 * `podlease check` and `podlease rebuild`: the controller's audit and rebuild, run once from a
 * kubeconfig, without a watch and without leader election. `check --fix` repairs only what is
 * safe: a lease whose pod a fresh read finds gone or finished is released, a pending lease its
 * pod carries is bound, a lease a pod carries and the store lost is restored when its address is
 * free, reservations are dropped as their StatefulSet's policy says. Conflicts are only reported.
 */
import type { KubeClient } from '../k8s/client.js';
import type { Logger } from '../log/logger.js';
import type { Pool, PoolSet } from '../pool/pools-file.js';
import type { LeaseStore } from '../pool/store.js';
import { audit, isProblem, type Finding } from './audit.js';
import { confirmGone } from './lookups.js';
import { clusterInformers } from './informers.js';
import type { PodInfo, StatefulSetInfo } from './pod-info.js';
import { PolicyBook } from './policies.js';
import { rebuildPool, type RebuildResult } from './rebuild.js';

export interface ClusterView {
  readonly live: Map<string, PodInfo>;
  readonly finished: Map<string, PodInfo>;
  readonly statefulSets: Map<string, StatefulSetInfo>;
}

/** Every pod (metadata only) and StatefulSet, listed once. */
export const readCluster = async (client: KubeClient, log: Logger): Promise<ClusterView> => {
  const { pods, finished, statefulSets: sets } = clusterInformers(client, log);
  await Promise.all([pods.load(), finished.load(), sets.load()]);
  const live = new Map<string, PodInfo>();
  for (const [uid, pod] of pods.items) if (!finished.items.has(uid)) live.set(uid, pod);
  const statefulSets = new Map<string, StatefulSetInfo>();
  for (const sts of sets.items.values()) statefulSets.set(sts.key, sts);
  return { live, finished: finished.items, statefulSets };
};

export interface CheckOptions {
  readonly store: LeaseStore;
  readonly pools: PoolSet;
  readonly client: KubeClient;
  readonly log: Logger;
  readonly fix: boolean;
  readonly pool?: string | undefined;
}

export interface CheckResult {
  readonly findings: readonly (Finding & { readonly fixed?: boolean })[];
  /** Pools without an epoch: nothing to audit, `podlease rebuild` first. */
  readonly notReady: readonly string[];
  /**
   * Pools whose store is on another history than they were reconciled on (a Redis failover or
   * restart), allocation paused: after `--fix`, only those it could not confirm.
   */
  readonly reconciling: readonly string[];
  /** Findings that are problems and were not fixed. */
  readonly problems: number;
}

const selected = (pools: PoolSet, only: string | undefined): Pool[] =>
  [...pools.pools.values()].filter(p => only === undefined || p.name === only);

type Fixer = (o: CheckOptions, pool: Pool, f: Finding, view: ClusterView) => Promise<boolean>;

const livePod = (f: Finding, view: ClusterView): PodInfo | undefined =>
  f.pod?.uid === undefined ? undefined : view.live.get(f.pod.uid);

const unreserveFix: Fixer = async (o, pool, f) =>
  f.key !== undefined && (await o.store.unreserve(pool, f.key)).removed;

/** The safe repair of each kind of finding; true when something changed. Conflicts have none. */
const FIXES: Partial<Record<Finding['kind'], Fixer>> = {
  leaked: async (o, pool, f) => {
    if (f.leaseId === undefined || f.pod === undefined) return false;
    if (!(await confirmGone(o.client, f.pod))) return false;
    return (await o.store.release(pool, f.leaseId, { uid: f.pod.uid })).released;
  },
  finished: async (o, pool, f) =>
    f.leaseId !== undefined &&
    (await o.store.release(pool, f.leaseId, { uid: f.pod?.uid })).released,
  unbound: async (o, pool, f, view) => {
    const pod = livePod(f, view);
    if (pod === undefined || f.leaseId === undefined) return false;
    await o.store.bind(pool, f.leaseId, pod);
    return true;
  },
  missing: async (o, pool, f, view) => {
    const pod = livePod(f, view);
    if (pod === undefined) return false;
    const r = await rebuildPool({
      store: o.store,
      pool,
      pods: new Map([[pod.uid, pod]]),
      log: o.log,
      only: f.leaseId,
      conflict: () => undefined,
    });
    return r.restored > 0;
  },
  'statefulset-gone': unreserveFix,
  'scaled-down': unreserveFix,
};

const fixOne: Fixer = async (o, pool, f, view) => {
  const fix = FIXES[f.kind];
  return fix === undefined ? false : fix(o, pool, f, view);
};

/** Pools on a changed store history, with that history, read before the pods are listed. */
const changedHistories = async (o: CheckOptions): Promise<Map<string, string>> => {
  const out = new Map<string, string>();
  for (const pool of selected(o.pools, o.pool)) {
    if ((await o.store.epoch(pool)) === undefined) continue;
    const h = await o.store.history(pool);
    if (h.current !== h.reconciledOn) out.set(pool.name, h.current);
  }
  return out;
};

export const checkCluster = async (o: CheckOptions): Promise<CheckResult> => {
  const histories = await changedHistories(o);
  const view = await readCluster(o.client, o.log);
  const policies = await new PolicyBook(o.store, o.pools, o.log).all();
  const findings: (Finding & { fixed?: boolean })[] = [];
  const notReady: string[] = [];
  const reconciling: string[] = [];
  for (const pool of selected(o.pools, o.pool)) {
    if ((await o.store.epoch(pool)) === undefined) {
      notReady.push(pool.name);
      continue;
    }
    const [leases, reservations] = await Promise.all([
      o.store.leases(pool),
      o.store.reservations(pool),
    ]);
    const found = audit({
      pool: pool.name,
      leases,
      reservations,
      pods: view.live,
      finished: view.finished,
      statefulSets: view.statefulSets,
      policies,
    });
    for (const f of found) {
      findings.push(o.fix ? { ...f, fixed: await fixOne(o, pool, f, view) } : f);
    }
    // Every lease the pods carry was restored (a repair that failed threw): allocation resumes,
    // unless the store changed history again since it was read.
    const history = histories.get(pool.name);
    if (history !== undefined && !(o.fix && (await o.store.markReconciled(pool, history)))) {
      reconciling.push(pool.name);
    }
  }
  const problems =
    findings.filter(f => isProblem(f) && f.fixed !== true).length +
    notReady.length +
    reconciling.length;
  return { findings, notReady, reconciling, problems };
};

export interface RebuildCliResult {
  readonly pool: string;
  readonly result: RebuildResult;
}

/** Rebuilds every selected pool whose epoch is missing; a ready pool is left alone. */
export const rebuildCluster = async (o: Omit<CheckOptions, 'fix'>): Promise<RebuildCliResult[]> => {
  const view = await readCluster(o.client, o.log);
  const out: RebuildCliResult[] = [];
  for (const pool of selected(o.pools, o.pool)) {
    const result = await rebuildPool({
      store: o.store,
      pool,
      pods: view.live,
      log: o.log,
      conflict: () => undefined,
    });
    out.push({ pool: pool.name, result });
  }
  return out;
};
