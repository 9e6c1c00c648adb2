/**
 * Rebuild: a pool whose epoch is missing (first install, a wiped or new Redis, the memory store
 * after a restart) gets back every lease and reservation its pods carry in their annotations,
 * then its epoch: only then does the webhook allocate from it again. Also restores a single
 * lease a pod carries and the store lost (reconcile). A lease that cannot be restored because
 * another one holds its address is a conflict, reported, never overwritten.
 */
import type { EventTarget } from '../k8s/events.js';
import type { Logger } from '../log/logger.js';
import { AddressInUseError, LeaseIdExistsError, NotInPoolError } from '../pool/errors.js';
import type { Pool } from '../pool/pools-file.js';
import type { LeaseStore } from '../pool/store.js';
import type { PodInfo, PodLease } from './pod-info.js';

/** Restore calls in flight during a rebuild. */
export const RESTORE_CONCURRENCY = 32;

export interface RebuildOptions {
  readonly store: LeaseStore;
  readonly pool: Pool;
  /** Live pods (not finished). */
  readonly pods: ReadonlyMap<string, PodInfo>;
  readonly log: Logger;
  conflict(pod: EventTarget, message: string): void;
  /** Restore only this lease id, and leave the pool's epoch alone (reconcile). */
  readonly only?: string | undefined;
  /** Called for each lease restored (now bound to `uid`). */
  restored?(leaseId: string, uid: string): void;
}

export interface RebuildResult {
  readonly restored: number;
  readonly conflicts: number;
  /** Lease ids already in the store (a rebuild run twice). */
  readonly present: number;
  /** The pool was ready already (someone else rebuilt or initialised it): nothing done. */
  readonly alreadyReady: boolean;
}

const restoreOne = async (
  o: RebuildOptions,
  pod: PodInfo,
  lease: PodLease,
): Promise<'restored' | 'present' | 'conflict'> => {
  try {
    await o.store.restore({
      pool: o.pool,
      leaseId: lease.id,
      ip: lease.ip,
      pod: { namespace: pod.namespace, name: pod.name, uid: pod.uid },
      stickyKey: pod.stickyKey,
    });
    return 'restored';
  } catch (err) {
    if (err instanceof LeaseIdExistsError) return 'present';
    if (err instanceof AddressInUseError || err instanceof NotInPoolError) {
      const message =
        `podlease: pod ${pod.namespace}/${pod.name} carries ${lease.ip} of pool ${o.pool.name} ` +
        `(lease ${lease.id}) but it cannot be restored: ${err.message}; the pod keeps running with ` +
        'it; delete the pod (or the other holder) so one of them is admitted again';
      o.log.error({ pool: o.pool.name, leaseId: lease.id, ip: lease.ip }, message);
      o.conflict(pod, message);
      return 'conflict';
    }
    throw err;
  }
};

/** The leases of the pool the pods carry, in the pods' order. */
function* leasesToRestore(o: RebuildOptions): Generator<[PodInfo, PodLease]> {
  for (const pod of o.pods.values()) {
    for (const lease of pod.leases) {
      if (lease.pool !== o.pool.name || (o.only !== undefined && lease.id !== o.only)) continue;
      yield [pod, lease];
    }
  }
}

/**
 * Restores with RESTORE_CONCURRENCY calls in flight, issued in the pods' order: the store
 * pipelines them, where 100k pods one at a time would wait for 100k round trips in a row.
 */
export const restoreLeases = async (
  o: RebuildOptions,
): Promise<{ restored: number; conflicts: number; present: number }> => {
  const counts = { restored: 0, conflicts: 0, present: 0 };
  // One generator shared by the workers: each lease is taken once; a worker that throws closes
  // it, and the others stop after their call in flight.
  const work = leasesToRestore(o);
  const worker = async (): Promise<void> => {
    for (const [pod, lease] of work) {
      const r = await restoreOne(o, pod, lease);
      if (r === 'restored') o.restored?.(lease.id, pod.uid);
      counts[r === 'conflict' ? 'conflicts' : r]++;
    }
  };
  await Promise.all(Array.from({ length: RESTORE_CONCURRENCY }, worker));
  return counts;
};

export const rebuildPool = async (o: RebuildOptions): Promise<RebuildResult> => {
  if (o.only !== undefined) return { ...(await restoreLeases(o)), alreadyReady: false };
  const state = await o.store.ensurePool(o.pool, { initialize: true, withoutEpoch: true });
  // 'created': the pool had no state at all (a new or wiped store) and now has it, without
  // epoch; 'uninitialised': it had state but no epoch. Either way it is this rebuild's to fill.
  const unready =
    state === 'created' ||
    state === 'uninitialised' ||
    (state === 'relaid' && (await o.store.epoch(o.pool)) === undefined);
  if (!unready) {
    return { restored: 0, conflicts: 0, present: 0, alreadyReady: true };
  }
  const counts = await restoreLeases(o);
  await o.store.markReady(o.pool);
  return { ...counts, alreadyReady: false };
};
