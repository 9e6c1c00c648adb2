/**
 * The webhook's answers when Redis failed over (the pool reconciles) or a write reached fewer
 * replicas than `--redis-min-replicas` (docs/redis.md): 503 with what is going on, and the lease
 * given back only when something may have been written.
 */
import { describe, expect, it } from 'vitest';
import { PoolReconcilingError, ReplicasBehindError } from '../../../src/pool/errors.js';
import { MemoryLeaseStore } from '../../../src/pool/memory-store.js';
import type { AllocateRequest, Allocation, ReleaseOptions } from '../../../src/pool/store.js';
import type { Pool } from '../../../src/pool/pools-file.js';
import { handleMutate } from '../../../src/webhook/handlers.js';
import { reviewWith } from '../../fixtures/admission/load.js';
import { harness } from './helpers.js';

/** A memory store whose allocations fail with `err` after (or instead of) writing. */
class FailingStore extends MemoryLeaseStore {
  readonly releases: string[] = [];
  readonly #err: Error;
  readonly #written: boolean;
  constructor(err: Error, written: boolean) {
    super();
    this.#err = err;
    this.#written = written;
  }

  override async allocate(req: AllocateRequest): Promise<Allocation> {
    if (this.#written) await super.allocate(req);
    throw this.#err;
  }

  override release(pool: Pool, leaseId: string, options?: ReleaseOptions) {
    this.releases.push(leaseId);
    return super.release(pool, leaseId, options);
  }
}

describe('denials of a failed-over or lagging Redis', () => {
  it('reconciling: 503 naming the histories and what to run; nothing to give back', async () => {
    const store = new FailingStore(
      new PoolReconcilingError('default', '8c1e2f3a4b5c6d7e', '57e1aa00bb11cc22'),
      false,
    );
    const h = await harness(undefined, { store });
    const { review } = await handleMutate(
      reviewWith('create-pod-deployment', { uid: 'r' }),
      {},
      h.deps,
    );
    expect(review.response?.allowed).toBe(false);
    expect(review.response?.status?.code).toBe(503);
    expect(review.response?.status?.message).toMatch(
      /^podlease: pool "default" is reconciling: .*replication id 8c1e2f3a4b5c, the pool was last reconciled on 57e1aa00bb11.*podlease check --fix/,
    );
    await new Promise(r => setTimeout(r, 50));
    expect(store.releases).toEqual([]);
  });

  it('replicas behind: 503, and the lease the primary took is given back', async () => {
    const store = new FailingStore(new ReplicasBehindError(1, 0, 1_000), true);
    const h = await harness(undefined, { store });
    const { review } = await handleMutate(
      reviewWith('create-pod-deployment', { uid: 'w' }),
      {},
      h.deps,
    );
    expect(review.response?.status?.code).toBe(503);
    expect(review.response?.status?.message).toContain(
      'the write reached 0 of the 1 replica(s) --redis-min-replicas asks for within 1000 ms',
    );
    await expect
      .poll(async () => (await store.stats(h.pools.pools.get('default')!)).leased)
      .toBe(0);
    expect(store.releases).toHaveLength(1);
  });
});
