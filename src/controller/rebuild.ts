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
import type { PodInfo } from './pod-info.js';

export interface RebuildOptions {
  readonly store: LeaseStore;
  readonly pool: Pool;
  /** Live pods (not finished). */
  readonly pods: ReadonlyMap<string, PodInfo>;
  readonly log: Logger;
  conflict(pod: EventTarget, message: string): void;
  /** Restore only this lease id, and leave the pool's epoch alone (reconcile). */
  readonly only?: string | undefined;
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
  lease: PodInfo['leases'][number],
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

export const restoreLeases = async (
  o: RebuildOptions,
): Promise<{ restored: number; conflicts: number; present: number }> => {
  const counts = { restored: 0, conflicts: 0, present: 0 };
  for (const pod of o.pods.values()) {
    for (const lease of pod.leases) {
      if (lease.pool !== o.pool.name || (o.only !== undefined && lease.id !== o.only)) continue;
      const r = await restoreOne(o, pod, lease);
      if (r === 'restored') counts.restored++;
      else if (r === 'present') counts.present++;
      else counts.conflicts++;
    }
  }
  return counts;
};

export const rebuildPool = async (o: RebuildOptions): Promise<RebuildResult> => {
  if (o.only !== undefined) return { ...(await restoreLeases(o)), alreadyReady: false };
  const state = await o.store.ensurePool(o.pool, { initialize: true, withoutEpoch: true });
  // 'created' without an epoch: a pool that had no state at all (a restarted Redis without
  // persistence) is created empty, and waits for its leases like one that lost only its epoch.
  if (state !== 'uninitialised' && (await o.store.epoch(o.pool)) !== undefined) {
    return { restored: 0, conflicts: 0, present: 0, alreadyReady: true };
  }
  const counts = await restoreLeases(o);
  await o.store.markReady(o.pool);
  return { ...counts, alreadyReady: false };
};
