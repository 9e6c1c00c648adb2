import { inject } from 'vitest';
import { LayoutMismatchError, PoolRecoveringError } from '../../../src/pool/errors.js';
import { newLeaseId } from '../../../src/pool/lease-id.js';
import { RedisLeaseStore } from '../../../src/pool/redis-store.js';
import type { AllocateRequest, LeaseStore } from '../../../src/pool/store.js';
import { describeLeaseStoreContract } from '../../contract/lease-store.contract.js';

const skip = inject('redisSkip');
const reason = skip === '' ? '' : ` (skipped: ${skip})`;

describeLeaseStoreContract(
  'redis',
  async () => {
    const store = await RedisLeaseStore.connect({ url: inject('redisUrl') });
    return { store, drop: p => store.dropPool(p.name) };
  },
  reason,
);

/**
 * Every allocation of the contract in the middle of a batch: it is sent together with decoy
 * allocations of the same pool name under another layout hash, which the script refuses (-6)
 * before it writes anything. The first decoy goes alone when the pool is idle; the second, the
 * allocation itself and the third share the next script call, in that order (or all four share
 * one, right after an answer). So each contract allocation runs after and before other items of
 * its call, and must behave exactly as a call of its own.
 */
const inMidBatch = (store: RedisLeaseStore): LeaseStore =>
  new Proxy(store, {
    get(target, prop) {
      if (prop === 'allocate') {
        return async (req: AllocateRequest) => {
          const decoy = (): Promise<unknown> =>
            target
              .allocate({
                pool: { ...req.pool, layout: { ...req.pool.layout, hash: 'decoy' } },
                leaseId: newLeaseId(),
                pod: { namespace: 'decoy' },
                ttlMs: 1_000,
              })
              .then(
                () => {
                  throw new Error('a decoy allocation was answered');
                },
                (err: unknown) => {
                  // A pool with no state answers -5 before it compares layouts.
                  if (err instanceof LayoutMismatchError || err instanceof PoolRecoveringError) {
                    return;
                  }
                  throw err;
                },
              );
          const before = target.allocationBatches;
          const settled = await Promise.allSettled([
            decoy(),
            decoy(),
            target.allocate(req),
            decoy(),
          ]);
          for (const s of settled) if (s.status === 'rejected') throw s.reason;
          // 4 items in order in at most 2 calls: the allocation shared its call with a decoy.
          const after = target.allocationBatches;
          const calls = after.batches - before.batches;
          if (req.dryRun !== true && (after.items - before.items !== 4 || calls > 2)) {
            throw new Error(`the allocation was sent alone (${calls} calls)`);
          }
          return (settled[2] as PromiseFulfilledResult<unknown>).value;
        };
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });

describeLeaseStoreContract(
  'redis, every allocation in the middle of a batch',
  async () => {
    const store = await RedisLeaseStore.connect({ url: inject('redisUrl') });
    return { store: inMidBatch(store), drop: p => store.dropPool(p.name) };
  },
  reason,
);
