/**
 * Carries out a lease plan against the store: one allocation per claim (both families at once for
 * a dual-stack pod), all inside the request's deadline.
 *
 * Nothing stays leased by a request that is not answered "allowed": when an allocation fails in a
 * way that leaves its outcome unknown (a timeout, a lost connection), or a sibling claim fails, or
 * the answer would come after the API server gave up, the lease is released by its id and this
 * call's attempt token at once, retried within a bound. A compare-and-delete on that pair is safe
 * even if the allocation never ran, and frees nothing once an API server retry of the same
 * request (same uid, same lease id) has adopted the lease.
 */
import { OWNED_ANNOTATIONS, USER_ANNOTATIONS } from '../pool/annotations.js';
import { AddressInUseError, isPoolError, type Holder } from '../pool/errors.js';
import type { Pool } from '../pool/pools-file.js';
import type { Allocation, LeaseStore, PodRef } from '../pool/store.js';
import type { Logger } from '../log/logger.js';
import type { Claim, Plan } from './decide.js';
import { within, type Deadline } from './deadline.js';

/** Whether a pod exists, asked of the API server; undefined when there is none to ask. */
export interface PodPresence {
  exists(namespace: string, name: string, timeoutMs: number): Promise<boolean | undefined>;
}

export interface AdmitContext {
  readonly store: LeaseStore;
  readonly leaseTtlMs: number;
  /** The lease id of this admission request (derived from its uid). */
  readonly leaseId: string;
  readonly requestUid: string;
  /** This call's attempt token. */
  readonly attempt: string;
  readonly deadline: Deadline;
  readonly dryRun: boolean;
  readonly log: Logger;
  readonly now: () => number;
  readonly pods?: PodPresence | undefined;
  /** Age a pending lease of the same pod name must reach before it may be replaced. */
  readonly pendingTakeoverMs?: number | undefined;
  /** How long a release after a failed or late admission keeps retrying. */
  readonly cleanupBudgetMs?: number | undefined;
  /** How long a released address rests before the next-free pick hands it out again. */
  readonly reuseCooldownMs?: number | undefined;
}

type LeasePlan = Extract<Plan, { kind: 'lease' }>;

/** Store outcomes after which nothing was written: no cleanup is needed. */
const DEFINITE = new Set([
  'POOL_EXHAUSTED',
  'ADDRESS_IN_USE',
  'NOT_IN_POOL',
  'UNKNOWN_POOL',
  'POOL_RECOVERING',
  'POOL_RECONCILING',
  'LAYOUT_MISMATCH',
  'LEASE_ID_EXISTS',
  'RESERVATION_EXISTS',
]);

const outcomeUnknown = (err: unknown): boolean => !(isPoolError(err) && DEFINITE.has(err.code));

export const DEFAULT_CLEANUP_BUDGET_MS = 30_000;
const CLEANUP_FIRST_DELAY_MS = 100;
const CLEANUP_MAX_DELAY_MS = 2_000;

const sleep = (ms: number): Promise<void> =>
  new Promise(resolve => {
    setTimeout(resolve, ms).unref();
  });

/**
 * Releases this admission's lease in `pool` (compare-and-delete on id and attempt token),
 * retrying until the store answers or the budget is spent. Never throws.
 */
export const releaseAttempt = async (
  pool: Pool,
  ctx: AdmitContext,
  why: string,
): Promise<boolean> => {
  const budget = ctx.cleanupBudgetMs ?? DEFAULT_CLEANUP_BUDGET_MS;
  const started = ctx.now();
  let delay = CLEANUP_FIRST_DELAY_MS;
  for (;;) {
    try {
      const r = await ctx.store.release(pool, ctx.leaseId, { attempt: ctx.attempt });
      if (r.released) {
        ctx.log.warn({ pool: pool.name, lease: ctx.leaseId, ip: r.ip, why }, 'released lease');
      }
      return true;
    } catch (err) {
      if (ctx.now() - started + delay > budget) {
        ctx.log.error(
          { err, pool: pool.name, lease: ctx.leaseId, why },
          'could not release the lease of an admission that was not allowed; it stays pending ' +
            'until the controller expires it (lease-ttl)',
        );
        return false;
      }
      await sleep(delay);
      delay = Math.min(delay * 2, CLEANUP_MAX_DELAY_MS);
    }
  }
};

/** The holder is a pending lease made for this sticky key, or for this very pod name. */
const mayReplace = (holder: Holder, claim: Claim, pod: PodRef): boolean => {
  if (holder.state !== 'pending') return false;
  if (claim.stickyKey !== undefined) return holder.leaseStickyKey === claim.stickyKey;
  return (
    pod.name !== undefined &&
    pod.name !== '' &&
    holder.namespace === pod.namespace &&
    holder.name === pod.name
  );
};

const allocateOne = async (
  plan: LeasePlan,
  claim: Claim,
  ctx: AdmitContext,
): Promise<Allocation> => {
  const calls: Promise<Allocation>[] = [];
  const allocate = (replacePending: boolean): Promise<Allocation> => {
    const before = ctx.now() - (ctx.pendingTakeoverMs ?? 0);
    const call = ctx.store.allocate({
      pool: claim.pool,
      leaseId: ctx.leaseId,
      pod: plan.pod,
      ttlMs: ctx.leaseTtlMs,
      ip: claim.ip,
      stickyKey: claim.stickyKey,
      dryRun: ctx.dryRun,
      now: ctx.now(),
      requestUid: ctx.requestUid,
      attempt: ctx.attempt,
      replacePendingBefore: replacePending ? before : undefined,
      reuseCooldownMs: ctx.reuseCooldownMs,
    });
    calls.push(call);
    return within(call, ctx.deadline.remainingMs(), `allocate in pool "${claim.pool.name}"`);
  };
  try {
    try {
      return await allocate(false);
    } catch (err) {
      if (!(err instanceof AddressInUseError) || !mayReplace(err.holder, claim, plan.pod)) {
        throw err;
      }
      // A pending lease of an earlier admission for this pod name: replaced only when that pod
      // does not exist (its create was rejected after mutation, or it is gone). A running pod of
      // that name keeps its address: this CREATE fails with AlreadyExists anyway.
      const name = plan.pod.name ?? '';
      const exists = await ctx.pods?.exists(plan.pod.namespace, name, ctx.deadline.remainingMs());
      if (exists === true) throw err;
      return await allocate(true);
    }
  } catch (err) {
    if (!ctx.dryRun && outcomeUnknown(err)) {
      const why = `allocation failed: ${err instanceof Error ? err.message : String(err)}`;
      // At once (on one connection the release runs after the allocation it follows), and again
      // if a call the deadline gave up on answers later after all.
      void releaseAttempt(claim.pool, ctx, why);
      for (const call of calls) {
        call.then(
          () => void releaseAttempt(claim.pool, ctx, 'the allocation answered after the deadline'),
          () => undefined,
        );
      }
    }
    throw err;
  }
};

/** Gives back this admission's lease in each claim's pool (a sibling denied, a late answer). */
export const releaseClaims = async (
  claims: readonly Claim[],
  ctx: AdmitContext,
  why: string,
): Promise<void> => {
  if (ctx.dryRun) return;
  await Promise.all(claims.map(c => releaseAttempt(c.pool, ctx, why)));
};

/** Allocates every claim of the plan, IPv4 first in the result; all or nothing. */
export const allocatePlan = async (plan: LeasePlan, ctx: AdmitContext): Promise<Allocation[]> => {
  const settled = await Promise.allSettled(plan.claims.map(c => allocateOne(plan, c, ctx)));
  const done = settled.flatMap(s => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find(s => s.status === 'rejected');
  if (failed !== undefined) {
    const taken = plan.claims.filter(c => done.some(a => a.lease.pool === c.pool.name));
    void releaseClaims(taken, ctx, 'a sibling claim was denied');
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
