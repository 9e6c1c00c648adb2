/**
 * Carries out a lease plan against the store: one allocation per claim (both families at once for
 * a dual-stack pod), all inside the request's deadline. If any allocation fails, the ones that
 * succeeded are released again: nothing stays leased by a denied request. An allocation that
 * answers after its deadline is released when it does.
 */
import { OWNED_ANNOTATIONS, USER_ANNOTATIONS } from '../pool/annotations.js';
import type { Allocation, LeaseStore } from '../pool/store.js';
import type { Logger } from '../log/logger.js';
import type { Claim, Plan } from './decide.js';
import { StoreTimeoutError, within, type Deadline } from './deadline.js';

export interface AdmitContext {
  readonly store: LeaseStore;
  readonly leaseTtlMs: number;
  readonly newLeaseId: () => string;
  readonly deadline: Deadline;
  readonly dryRun: boolean;
  readonly log: Logger;
  readonly now: () => number;
}

type LeasePlan = Extract<Plan, { kind: 'lease' }>;

const allocateOne = async (
  plan: LeasePlan,
  claim: Claim,
  ctx: AdmitContext,
): Promise<Allocation> => {
  const pending = ctx.store.allocate({
    pool: claim.pool,
    leaseId: ctx.newLeaseId(),
    pod: plan.pod,
    ttlMs: ctx.leaseTtlMs,
    ip: claim.ip,
    stickyKey: claim.stickyKey,
    dryRun: ctx.dryRun,
    now: ctx.now(),
  });
  try {
    return await within(
      pending,
      ctx.deadline.remainingMs(),
      `allocate in pool "${claim.pool.name}"`,
    );
  } catch (err) {
    if (err instanceof StoreTimeoutError && !ctx.dryRun) {
      // The store may still answer: give back what it hands out too late.
      pending
        .then(late => ctx.store.release(claim.pool, late.lease.id))
        .then(r => {
          ctx.log.warn(
            { pool: claim.pool.name, ip: r.ip },
            'released an allocation that answered after the deadline',
          );
        })
        .catch(() => undefined);
    }
    throw err;
  }
};

const rollback = async (
  allocations: readonly Allocation[],
  plan: LeasePlan,
  ctx: AdmitContext,
): Promise<void> => {
  await Promise.all(
    allocations.map(async a => {
      const pool = plan.claims.find(c => c.pool.name === a.lease.pool)?.pool;
      if (pool === undefined || a.dryRun) return;
      try {
        await within(
          ctx.store.release(pool, a.lease.id),
          Math.max(ctx.deadline.remainingMs(), 250),
          'release',
        );
      } catch (err) {
        ctx.log.error(
          { err, pool: pool.name, lease: a.lease.id, ip: a.lease.ip },
          'could not release after a failed dual-stack admission; the pending lease expires after lease-ttl',
        );
      }
    }),
  );
};

/** Allocates every claim of the plan, IPv4 first in the result; all or nothing. */
export const allocatePlan = async (plan: LeasePlan, ctx: AdmitContext): Promise<Allocation[]> => {
  const settled = await Promise.allSettled(plan.claims.map(c => allocateOne(plan, c, ctx)));
  const done = settled.flatMap(s => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find(s => s.status === 'rejected');
  if (failed !== undefined) {
    await rollback(done, plan, ctx);
    throw failed.reason;
  }
  return done;
};

/** The owned annotations for a pod holding these allocations (comma lists, IPv4 first). */
export const ownedAnnotations = (
  plan: LeasePlan,
  allocations: readonly Allocation[],
): Record<string, string> => {
  const out: Record<string, string> = {
    [OWNED_ANNOTATIONS.ip]: allocations.map(a => a.lease.ip).join(','),
    [OWNED_ANNOTATIONS.cidr]: plan.claims.map(c => c.pool.cidrText).join(','),
    [OWNED_ANNOTATIONS.lease]: allocations.map(a => `${a.lease.pool}/${a.lease.id}`).join(','),
  };
  if (plan.claims.some(c => c.pool.gateway !== undefined)) {
    out[OWNED_ANNOTATIONS.gateway] = plan.claims.map(c => c.pool.gateway ?? '').join(',');
  }
  if (plan.fillPool !== undefined) out[USER_ANNOTATIONS.pool] = plan.fillPool;
  return out;
};
