/**
 * The lease lifecycle controller (docs/design.md §3, §7): binds pending leases to their pods,
 * releases a lease when its pod is gone or finished, expires pending leases no pod carries,
 * applies `when-scaled` / `when-deleted`, reconciles the store with the API server, and rebuilds
 * a pool whose epoch is missing from the pods' annotations before marking it ready.
 *
 * Every replica watches (so a successor takes over with a warm cache); only the leader acts. Each
 * action is justified by API server state and the store's compare-and-delete guards, so a stale
 * leader finishing an action after losing its Lease cannot free a live address: a release names
 * the lease id and the pod UID it was bound to, UIDs are never reused, and expiry and leak
 * repairs re-read the API server first.
 *
 * Work on pods is level-driven: an event only queues the pod's UID; the worker looks at the pod
 * as the cache has it now (or its tombstone when it is gone) and makes the store agree.
 */
import type { KubeClient } from '../k8s/client.js';
import type { EventSink } from '../k8s/events.js';
import type { Informer, Slim } from '../k8s/informer.js';
import type { Logger } from '../log/logger.js';
import { LeaseConflictError, LeaseNotFoundError } from '../pool/errors.js';
import type { Pool, PoolSet } from '../pool/pools-file.js';
import { toReportJson } from '../pool/report.js';
import type { LeaseRecord, LeaseStore } from '../pool/store.js';
import { audit, FINDING_KINDS, type Finding } from './audit.js';
import { clusterInformers } from './informers.js';
import type { ControllerMetrics } from './metrics.js';
import { splitStickyKey, type PodInfo, type StatefulSetInfo } from './pod-info.js';
import { PolicyBook } from './policies.js';
import { rebuildPool } from './rebuild.js';
import { confirmGone, freshPodsCarrying } from './lookups.js';

export interface ControllerOptions {
  readonly reconcileIntervalMs: number;
  /** How long after noticing a missing epoch the rebuild lists pods (admissions in flight land). */
  readonly rebuildSettleMs: number;
  /** Pending leases are looked at this often. */
  readonly expiryIntervalMs: number;
  /** The pools' epochs are read this often (a wiped store is noticed within it). */
  readonly epochCheckMs: number;
  readonly workers: number;
}

export const DEFAULT_CONTROLLER_OPTIONS: ControllerOptions = {
  reconcileIntervalMs: 5 * 60_000,
  rebuildSettleMs: 5_000,
  expiryIntervalMs: 30_000,
  epochCheckMs: 2_000,
  workers: 16,
};

/** A pending lease must look abandoned this many times in a row before it is expired. */
export const LEAK_SIGHTINGS_BEFORE_RELEASE = 3;
/** Tombstones a follower keeps for when it leads (older ones are left to the reconcile). */
const MAX_TOMBSTONES = 50_000;
const MAX_RETRY_DELAY_MS = 30_000;

export interface ControllerDeps {
  readonly store: LeaseStore;
  readonly pools: PoolSet;
  readonly client: KubeClient;
  readonly log: Logger;
  readonly metrics: ControllerMetrics;
  readonly events: EventSink;
  readonly options: ControllerOptions;
}

export interface ReconcileReport {
  readonly at: number;
  readonly findings: readonly Finding[];
}

const errText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class Controller {
  readonly pods: Informer<PodInfo>;
  readonly finished: Informer<PodInfo>;
  readonly statefulSets: Informer<StatefulSetInfo>;
  /** The last reconcile's findings (the pool map and `/metrics` show them). */
  lastReport: ReconcileReport | undefined;
  private readonly d: ControllerDeps;
  private readonly policies: PolicyBook;
  private leading = false;
  /** Bumped on every change of leadership: work of an earlier term stops. */
  private term = 0;
  private readonly queue = new Set<string>();
  private readonly tombstones = new Map<string, PodInfo>();
  private readonly attempts = new Map<string, number>();
  /** Lease ids known bound, to the pod UID: a pod's later events need no store call. */
  private readonly bound = new Map<string, string>();
  private readonly sightings = new Map<string, number>();
  private readonly rebuilding = new Set<string>();
  /**
   * Pools whose epoch this term has seen: only their leases are bound. Until the first epoch
   * check, or while a pool is rebuilt, a bind could only miss (the rebuild restores it bound).
   */
  private readonly ready = new Set<string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private active = 0;
  private reconciling: Promise<void> | undefined;
  private stopped = false;

  constructor(deps: ControllerDeps) {
    this.d = deps;
    this.policies = new PolicyBook(deps.store, deps.pools, deps.log);
    const log = deps.log;
    const restart = (resource: string) => (err: unknown, delayMs: number) => {
      deps.metrics.watchRestart(resource);
      log.warn({ err, retryInMs: delayMs, resource }, `${resource} watch failed; listing again`);
    };
    const informers = clusterInformers(deps.client, log, {
      pods: {
        upsert: uid => {
          this.tombstones.delete(uid);
          this.enqueue(uid);
        },
        delete: (uid, old) => {
          if (old.leases.length === 0) return;
          if (this.tombstones.size >= MAX_TOMBSTONES) this.tombstones.clear();
          this.tombstones.set(uid, old);
          this.enqueue(uid);
        },
        synced: count => {
          log.info({ pods: count }, 'pod cache synced');
        },
        restart: restart('pods'),
      },
      finished: {
        upsert: uid => {
          this.enqueue(uid);
        },
        restart: restart('finished pods'),
      },
      statefulSets: {
        upsert: (_uid, sts, old) => {
          if (this.leading) this.onStatefulSet(sts, old);
        },
        delete: (_uid, sts) => {
          if (this.leading) this.onStatefulSetGone(sts);
        },
        restart: restart('statefulsets'),
      },
    });
    this.pods = informers.pods;
    this.finished = informers.finished;
    this.statefulSets = informers.statefulSets;
  }

  /** Starts the watches; acting waits for `setLeader(true)`. */
  start(): void {
    this.pods.start();
    this.finished.start();
    this.statefulSets.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.setLeader(false);
    await Promise.all([this.pods.stop(), this.finished.stop(), this.statefulSets.stop()]);
  }

  /** Whether every watch has listed once. */
  synced(): boolean {
    return this.pods.synced && this.finished.synced && this.statefulSets.synced;
  }

  setLeader(leader: boolean): void {
    if (leader === this.leading) return;
    this.leading = leader;
    this.term++;
    this.d.metrics.leader(leader);
    this.ready.clear();
    for (const t of this.timers.splice(0)) clearInterval(t);
    if (!leader || this.stopped) return;
    void this.lead(this.term);
  }

  private current(term: number): boolean {
    return this.leading && this.term === term && !this.stopped;
  }

  private async lead(term: number): Promise<void> {
    const { options, log } = this.d;
    while (!this.synced()) {
      if (!this.current(term)) return;
      await sleep(100);
    }
    log.info('controller active: checking pools, then reconciling');
    // A store down now is retried by the periodic check below: the timers must be set up.
    await this.checkEpochs(term).catch((err: unknown) => {
      log.error({ err }, 'checking the pools failed; checking again shortly');
    });
    for (const uid of this.pods.items.keys()) this.enqueue(uid);
    for (const uid of this.tombstones.keys()) this.enqueue(uid);
    for (const uid of this.finished.items.keys()) this.enqueue(uid);
    this.pump();
    await this.reconcile(term).catch((err: unknown) => {
      log.error({ err }, 'reconcile failed');
    });
    if (!this.current(term)) return;
    const every = (ms: number, fn: () => Promise<void>): void => {
      let busy = false;
      const t = setInterval(() => {
        if (busy || !this.current(term)) return;
        busy = true;
        fn()
          .catch((err: unknown) => {
            log.error({ err }, 'controller pass failed');
          })
          .finally(() => {
            busy = false;
          });
      }, ms);
      t.unref();
      this.timers.push(t);
    };
    every(options.epochCheckMs, () => this.checkEpochs(term));
    every(options.expiryIntervalMs, () => this.expire(term));
    every(options.reconcileIntervalMs, () => this.reconcile(term));
  }

  // ---- pools: epoch and rebuild -------------------------------------------------------------

  /**
   * Rebuilds every pool whose epoch is missing (first install, wiped or new store), and starts a
   * reconcile when a pool's store came back on another history (a Redis failover or restart).
   */
  private async checkEpochs(term: number): Promise<void> {
    let reconciling = false;
    for (const pool of this.d.pools.pools.values()) {
      if (!this.current(term) || this.rebuilding.has(pool.name)) continue;
      const epoch = await this.d.store.epoch(pool);
      if (epoch !== undefined) {
        this.ready.add(pool.name);
        const h = await this.d.store.history(pool);
        reconciling ||= h.current !== h.reconciledOn;
        continue;
      }
      this.ready.delete(pool.name);
      this.rebuilding.add(pool.name);
      await this.rebuild(pool, term).finally(() => this.rebuilding.delete(pool.name));
    }
    if (reconciling && this.reconciling === undefined && this.current(term)) {
      void this.reconcile(term).catch((err: unknown) => {
        this.d.log.error({ err }, 'reconcile after a store history change failed');
      });
    }
  }

  /**
   * Pools whose store is on another history than the one they were last reconciled on, with
   * that history as read now: the reconcile confirms it once it has restored what pods carry.
   * Read before the pods are listed, so a failover after the listing is not confirmed.
   */
  private async changedHistories(term: number): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const pool of this.d.pools.pools.values()) {
      if (!this.current(term) || this.rebuilding.has(pool.name)) continue;
      if ((await this.d.store.epoch(pool)) === undefined) continue;
      const h = await this.d.store.history(pool);
      if (h.current !== h.reconciledOn) out.set(pool.name, h.current);
    }
    if (out.size > 0) {
      this.d.log.warn(
        { pools: [...out.keys()], settleMs: this.d.options.rebuildSettleMs },
        "the store came back on another history (a Redis failover or restart): allocation waits until every pod's leases are checked against it and what is missing is restored",
      );
      // Admissions answered by the old history before it ended land in the API server first.
      await sleep(this.d.options.rebuildSettleMs);
    }
    return out;
  }

  /** Allocation resumes on `history`, unless the store has moved on again meanwhile. */
  private async confirmHistory(pool: Pool, history: string): Promise<void> {
    if (await this.d.store.markReconciled(pool, history)) {
      this.d.metrics.historyReconciled(pool.name);
      this.d.log.warn(
        { pool: pool.name, history },
        `pool ${pool.name} reconciled on the store's new history: allocation resumes`,
      );
    } else {
      this.d.log.warn(
        { pool: pool.name, history },
        `pool ${pool.name}: the store changed history again during the reconcile; reconciling again`,
      );
    }
  }

  private async rebuild(pool: Pool, term: number): Promise<void> {
    const { log, options } = this.d;
    log.warn(
      { pool: pool.name, settleMs: options.rebuildSettleMs },
      `pool ${pool.name} has no epoch in the store: rebuilding it from the pods' annotations`,
    );
    await sleep(options.rebuildSettleMs);
    if (!this.current(term)) return;
    // A fresh list: every pod admitted before the store lost its state is in it.
    await Promise.all([this.pods.resync(), this.finished.resync()]);
    if (!this.current(term)) return;
    const started = Date.now();
    const live = this.livePods();
    const result = await rebuildPool({
      store: this.d.store,
      pool,
      pods: live,
      log,
      conflict: (pod, message) => {
        this.d.metrics.conflict(pool.name, 'restore');
        this.d.events.warn(pod, 'PodleaseRestoreConflict', message);
      },
      // Restored leases are bound already: the pods' next sync needs no store call.
      restored: (leaseId, uid) => {
        this.bound.set(leaseId, uid);
      },
    });
    if (this.current(term)) {
      this.ready.add(pool.name);
      // Events that came while the pool was not ready were skipped: look at every pod again
      // (a restored lease is in `bound`, so that costs no store call).
      for (const uid of this.pods.items.keys()) this.enqueue(uid);
    }
    this.d.metrics.restored(pool.name, result.restored);
    this.d.metrics.rebuildSeconds(pool.name, (Date.now() - started) / 1000);
    log.warn({ pool: pool.name, ...result }, `pool ${pool.name} rebuilt and ready`);
  }

  /** Pods whose sandbox may live: in the pod cache and not finished. */
  private livePods(): Map<string, PodInfo> {
    const live = new Map<string, PodInfo>();
    for (const [uid, pod] of this.pods.items) {
      if (!this.finished.items.has(uid)) live.set(uid, pod);
    }
    return live;
  }

  // ---- the per-pod queue ---------------------------------------------------------------------

  private enqueue(uid: string): void {
    this.queue.add(uid);
    if (this.leading) this.pump();
  }

  private pump(): void {
    const term = this.term;
    while (this.leading && this.active < this.d.options.workers && this.queue.size > 0) {
      const uid = this.queue.values().next().value as string;
      this.queue.delete(uid);
      this.active++;
      this.syncPod(uid, term)
        .then(() => {
          this.attempts.delete(uid);
        })
        .catch((err: unknown) => {
          this.retry(uid, err);
        })
        .finally(() => {
          this.active--;
          this.pump();
        });
    }
  }

  private retry(uid: string, err: unknown): void {
    const n = (this.attempts.get(uid) ?? 0) + 1;
    this.attempts.set(uid, n);
    const delay = Math.min(500 * 2 ** (n - 1), MAX_RETRY_DELAY_MS);
    this.d.log.warn({ err, uid, attempt: n, retryInMs: delay }, 'pod sync failed; retrying');
    setTimeout(() => {
      this.enqueue(uid);
    }, delay).unref();
  }

  private async syncPod(uid: string, term: number): Promise<void> {
    if (!this.current(term)) {
      this.queue.add(uid);
      return;
    }
    const pod = this.pods.items.get(uid);
    if (pod === undefined) {
      const gone = this.tombstones.get(uid);
      if (gone === undefined) return;
      await this.releasePod(gone, 'deleted');
      this.tombstones.delete(uid);
      return;
    }
    if (this.finished.items.has(uid)) {
      await this.releasePod(pod, 'finished');
      return;
    }
    for (const lease of pod.leases) {
      if (this.bound.get(lease.id) === uid) continue;
      const pool = this.d.pools.pools.get(lease.pool);
      if (pool === undefined || !this.ready.has(pool.name)) continue;
      await this.bindLease(pool, pod, lease.id);
    }
  }

  private async bindLease(pool: Pool, pod: PodInfo, leaseId: string): Promise<void> {
    try {
      const rec = await this.d.store.bind(pool, leaseId, pod);
      this.bound.set(leaseId, pod.uid);
      if (rec.boundAt !== undefined && Date.now() - rec.boundAt < 5_000)
        this.d.metrics.bound(pool.name);
    } catch (err) {
      if (err instanceof LeaseConflictError) {
        this.d.metrics.conflict(pool.name, 'lease-id');
        const message = `podlease: lease ${pool.name}/${leaseId} is bound to pod ${err.boundPod} (uid ${err.boundUid}), and pod ${pod.namespace}/${pod.name} carries it too; the address stays with the first pod; delete the second pod so it is admitted again with an address of its own`;
        this.d.events.warn(pod, 'PodleaseLeaseConflict', message);
        const [ns = '', name = ''] = err.boundPod.split('/');
        this.d.events.warn(
          { namespace: ns, name, uid: err.boundUid },
          'PodleaseLeaseConflict',
          message,
        );
        this.d.log.error(
          { pool: pool.name, leaseId, pod: `${pod.namespace}/${pod.name}` },
          message,
        );
        return;
      }
      if (err instanceof LeaseNotFoundError) {
        // Restored (or reported) by the reconcile, which reads the pod afresh first.
        this.d.log.warn(
          { pool: pool.name, leaseId, pod: `${pod.namespace}/${pod.name}` },
          'pod carries a lease the store does not have; the reconcile restores it',
        );
        return;
      }
      throw err;
    }
  }

  private async releasePod(pod: PodInfo, reason: 'deleted' | 'finished'): Promise<void> {
    for (const lease of pod.leases) {
      const pool = this.d.pools.pools.get(lease.pool);
      if (pool === undefined) continue;
      const r = await this.d.store.release(pool, lease.id, { uid: pod.uid });
      this.bound.delete(lease.id);
      if (r.released) {
        this.d.metrics.released(pool.name, reason);
        this.d.log.info(
          {
            pool: pool.name,
            leaseId: lease.id,
            ip: r.ip,
            pod: `${pod.namespace}/${pod.name}`,
            reason,
            kept: r.keptByReservation,
          },
          `released ${r.ip ?? lease.ip} of pod ${pod.namespace}/${pod.name} (${reason})`,
        );
      }
      if (reason === 'deleted' && pod.stickyKey !== undefined) {
        await this.retentionOnPodGone(pool, pod.stickyKey);
      }
    }
  }

  // ---- retention -----------------------------------------------------------------------------

  private statefulSet(key: string): StatefulSetInfo | undefined {
    for (const sts of this.statefulSets.items.values()) if (sts.key === key) return sts;
    return undefined;
  }

  /** A sticky pod is gone: drop its ordinal's reservation if its StatefulSet's policy says so. */
  private async retentionOnPodGone(pool: Pool, key: string): Promise<void> {
    const split = splitStickyKey(key);
    if (split === undefined) return;
    const sts = this.statefulSet(split.statefulSet);
    if (sts !== undefined) {
      const inRange = split.ordinal >= sts.start && split.ordinal < sts.start + sts.replicas;
      if (!inRange && sts.policy.whenScaled === 'Delete') await this.unreserve(pool, key, 'scaled');
      return;
    }
    const policy = await this.policies.get(split.statefulSet);
    if (policy?.whenDeleted === 'Delete') await this.unreserve(pool, key, 'deleted');
  }

  private async unreserve(pool: Pool, key: string, reason: 'scaled' | 'deleted'): Promise<void> {
    const r = await this.d.store.unreserve(pool, key);
    if (!r.removed) return;
    this.d.metrics.unreserved(pool.name, reason);
    this.d.log.info(
      { pool: pool.name, key, ip: r.ip, freed: r.freed, reason },
      `reservation ${key} (${r.ip ?? ''}) released: StatefulSet ${reason === 'scaled' ? 'scaled below it (when-scaled: Delete)' : 'deleted (when-deleted: Delete)'}`,
    );
  }

  private onStatefulSet(sts: StatefulSetInfo, old: StatefulSetInfo | undefined): void {
    const run = async (): Promise<void> => {
      // PolicyBook.set writes only what changed.
      await this.policies.set(sts.key, sts.policy);
      const shrank = old === undefined || sts.replicas < old.replicas || sts.start !== old.start;
      if (shrank && sts.policy.whenScaled === 'Delete') await this.dropReservations(sts.key, sts);
    };
    run().catch((err: unknown) => {
      this.d.log.warn(
        { err, statefulSet: sts.key },
        'StatefulSet retention not applied; the reconcile retries',
      );
    });
  }

  private onStatefulSetGone(sts: StatefulSetInfo): void {
    const run = async (): Promise<void> => {
      await this.policies.set(sts.key, sts.policy);
      if (sts.policy.whenDeleted === 'Delete') await this.dropReservations(sts.key, undefined);
    };
    run().catch((err: unknown) => {
      this.d.log.warn(
        { err, statefulSet: sts.key },
        'StatefulSet retention not applied; the reconcile retries',
      );
    });
  }

  /**
   * Reservations of a StatefulSet whose ordinal is out of range (`sts` given) or all of them
   * (StatefulSet gone), except those a live pod still holds: that pod's deletion applies them.
   */
  private async dropReservations(stsKey: string, sts: StatefulSetInfo | undefined): Promise<void> {
    const held = new Set<string>();
    for (const pod of this.livePods().values())
      if (pod.stickyKey !== undefined) held.add(pod.stickyKey);
    for (const pool of this.d.pools.pools.values()) {
      for (const r of await this.d.store.reservations(pool)) {
        const split = splitStickyKey(r.key);
        if (split?.statefulSet !== stsKey || held.has(r.key)) continue;
        const inRange =
          sts !== undefined &&
          split.ordinal >= sts.start &&
          split.ordinal < sts.start + sts.replicas;
        if (!inRange) await this.unreserve(pool, r.key, sts === undefined ? 'deleted' : 'scaled');
      }
    }
  }

  // ---- pending expiry ------------------------------------------------------------------------

  private async expire(term: number): Promise<void> {
    const carried = new Map<string, PodInfo>();
    for (const pod of this.pods.items.values()) for (const l of pod.leases) carried.set(l.id, pod);
    for (const pool of this.d.pools.pools.values()) {
      if (!this.current(term) || this.rebuilding.has(pool.name)) continue;
      const suspects = this.suspects(await this.d.store.expired(pool, Date.now()), carried);
      if (suspects.length === 0) continue;
      // A fresh (quorum) read of the API server, one list per namespace.
      const present = await freshPodsCarrying(this.d.client, suspects);
      for (const lease of suspects) {
        this.sightings.delete(lease.id);
        if (!this.current(term)) return;
        if (!present.has(lease.id)) await this.expireOne(pool, lease);
      }
    }
  }

  /**
   * The expired pending leases no cached pod carries, seen so LEAK_SIGHTINGS_BEFORE_RELEASE
   * times in a row; a lease a cached pod carries is bound instead.
   */
  private suspects(
    candidates: readonly LeaseRecord[],
    carried: ReadonlyMap<string, PodInfo>,
  ): LeaseRecord[] {
    const out: LeaseRecord[] = [];
    for (const lease of candidates) {
      const pod = carried.get(lease.id);
      if (pod !== undefined) {
        this.sightings.delete(lease.id);
        this.enqueue(pod.uid);
        continue;
      }
      const n = (this.sightings.get(lease.id) ?? 0) + 1;
      this.sightings.set(lease.id, n);
      if (n >= LEAK_SIGHTINGS_BEFORE_RELEASE) out.push(lease);
    }
    return out;
  }

  private async expireOne(pool: Pool, lease: LeaseRecord): Promise<void> {
    const r = await this.d.store.release(pool, lease.id, { onlyIfPending: true });
    if (!r.released) return;
    this.d.metrics.expired(pool.name);
    this.d.metrics.released(pool.name, 'expired');
    this.d.log.info(
      { pool: pool.name, leaseId: lease.id, ip: r.ip, namespace: lease.namespace },
      `pending lease ${pool.name}/${lease.id} (${r.ip ?? lease.ip}) expired: no pod carries it`,
    );
  }

  // ---- reconcile -----------------------------------------------------------------------------

  /** One full pass (also what `podlease check` prints); a second call waits for the first. */
  reconcile(term: number = this.term): Promise<void> {
    this.reconciling ??= this.reconcileOnce(term).finally(() => {
      this.reconciling = undefined;
    });
    return this.reconciling;
  }

  private async reconcileOnce(term: number): Promise<void> {
    const started = Date.now();
    const histories = await this.changedHistories(term);
    await Promise.all([this.pods.resync(), this.finished.resync(), this.statefulSets.resync()]);
    const findings: Finding[] = [];
    const live = this.livePods();
    const statefulSets = new Map<string, StatefulSetInfo>();
    for (const sts of this.statefulSets.items.values()) statefulSets.set(sts.key, sts);
    const policies = await this.policies.all();
    for (const pool of this.d.pools.pools.values()) {
      if (!this.current(term) || this.rebuilding.has(pool.name)) continue;
      if ((await this.d.store.epoch(pool)) === undefined) continue;
      const [leases, reservations] = await Promise.all([
        this.d.store.leases(pool),
        this.d.store.reservations(pool),
      ]);
      const found = audit({
        pool: pool.name,
        leases,
        reservations,
        pods: live,
        finished: this.finished.items,
        statefulSets,
        policies,
      });
      this.countFindings(pool, found);
      const unrestored = await this.repairAll(pool, found, term);
      findings.push(...found);
      await this.saveReport(pool, found);
      const history = histories.get(pool.name);
      if (history !== undefined && unrestored === 0 && this.current(term)) {
        await this.confirmHistory(pool, history);
      }
    }
    this.lastReport = { at: Date.now(), findings };
    this.d.metrics.reconcileSeconds((Date.now() - started) / 1000);
    this.d.log.info(
      { findings: findings.length, ms: Date.now() - started, pods: live.size },
      'reconcile done',
    );
  }

  /** Keeps the pool's findings in the store, where every replica's pool map reads them. */
  private async saveReport(pool: Pool, found: readonly Finding[]): Promise<void> {
    await this.d.store.saveReport(pool, toReportJson(Date.now(), found)).catch((err: unknown) => {
      this.d.log.warn({ err, pool: pool.name }, `reconcile report not saved: ${errText(err)}`);
    });
  }

  private countFindings(pool: Pool, found: readonly Finding[]): void {
    const counts = new Map<string, number>();
    for (const f of found) counts.set(f.kind, (counts.get(f.kind) ?? 0) + 1);
    for (const kind of FINDING_KINDS) {
      this.d.metrics.findings(pool.name, kind, counts.get(kind) ?? 0);
    }
  }

  /** Repairs what it can; the number of missing leases that could not be restored. */
  private async repairAll(pool: Pool, found: readonly Finding[], term: number): Promise<number> {
    let unrestored = 0;
    for (const f of found) {
      if (!this.current(term)) return unrestored + 1;
      await this.repair(pool, f).catch((err: unknown) => {
        if (f.kind === 'missing') unrestored++;
        this.d.log.warn(
          { err, finding: f.kind, pool: pool.name },
          `could not repair: ${errText(err)}`,
        );
      });
    }
    return unrestored;
  }

  private async repair(pool: Pool, f: Finding): Promise<void> {
    switch (f.kind) {
      case 'unbound':
        if (f.pod?.uid !== undefined) this.enqueue(f.pod.uid);
        return;
      case 'finished':
        await this.releaseFinished(pool, f);
        return;
      case 'leaked':
        await this.releaseLeaked(pool, f);
        return;
      case 'missing':
        await this.restoreMissing(pool, f);
        return;
      case 'uid-conflict':
      case 'duplicate-address':
        this.reportConflict(pool, f);
        return;
      case 'statefulset-gone':
      case 'scaled-down':
        await this.unreserveFinding(pool, f);
        return;
    }
  }

  private async unreserveFinding(pool: Pool, f: Finding): Promise<void> {
    if (f.key === undefined) return;
    await this.unreserve(pool, f.key, f.kind === 'scaled-down' ? 'scaled' : 'deleted');
  }

  private async releaseFinished(pool: Pool, f: Finding): Promise<void> {
    if (f.leaseId === undefined) return;
    const r = await this.d.store.release(pool, f.leaseId, { uid: f.pod?.uid });
    if (r.released) this.d.metrics.released(pool.name, 'finished');
  }

  /** A bound lease whose pod the cache lacks: released once a GET confirms the pod is gone. */
  private async releaseLeaked(pool: Pool, f: Finding): Promise<void> {
    if (f.leaseId === undefined || f.pod === undefined) return;
    if (!(await confirmGone(this.d.client, f.pod))) return;
    const r = await this.d.store.release(pool, f.leaseId, { uid: f.pod.uid });
    if (!r.released) return;
    this.d.metrics.leaked(pool.name);
    this.d.metrics.released(pool.name, 'leaked');
    this.d.log.warn({ pool: pool.name, leaseId: f.leaseId, ip: f.ip }, `${f.message}: released`);
    if (f.key !== undefined) await this.retentionOnPodGone(pool, f.key);
  }

  private reportConflict(pool: Pool, f: Finding): void {
    this.d.metrics.conflict(pool.name, f.kind);
    this.d.log.error({ pool: pool.name, ip: f.ip, leaseId: f.leaseId }, f.message);
    for (const target of [f.pod, f.other]) {
      if (target !== undefined) {
        this.d.events.warn(target, 'PodleaseAddressConflict', `podlease: ${f.message}`);
      }
    }
  }

  private async restoreMissing(pool: Pool, f: Finding): Promise<void> {
    if (f.pod?.uid === undefined || f.leaseId === undefined || f.ip === undefined) return;
    const pod = this.pods.items.get(f.pod.uid);
    if (pod === undefined) return;
    const result = await rebuildPool({
      store: this.d.store,
      pool,
      pods: new Map([[pod.uid, pod]]),
      log: this.d.log,
      only: f.leaseId,
      conflict: (target, message) => {
        this.d.metrics.conflict(pool.name, 'restore');
        this.d.events.warn(target, 'PodleaseRestoreConflict', message);
      },
    });
    if (result.restored > 0) this.d.metrics.restored(pool.name, result.restored);
  }
}

const sleep = (ms: number): Promise<void> =>
  new Promise(resolve => {
    setTimeout(resolve, ms).unref();
  });

export type { Slim };
