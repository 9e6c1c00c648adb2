/**
 * The webhook's side of lease safety, on the memory store: a duplicate CREATE of a running pod
 * changes nothing, an API server retry gets the same lease, an answer the API server would no
 * longer read, or the store gave too late, is not "allowed" and leaves no lease behind (an
 * ip-list move the late allocation made stays).
 */
import { describe, expect, it } from 'vitest';
import type { Pool } from '../../../src/pool/pools-file.js';
import type { PodPresence } from '../../../src/webhook/admit.js';
import { handleMutate } from '../../../src/webhook/handlers.js';
import { applyAnnotationPatch } from '../../../src/webhook/patch.js';
import type { AdmissionReview } from '../../../src/webhook/types.js';
import { reviewWith } from '../../fixtures/admission/load.js';
import { decodePatch, harness } from './helpers.js';

const annotations = (review: AdmissionReview): Record<string, string> =>
  applyAnnotationPatch({}, decodePatch(review)) ?? {};

const presence = (exists: boolean): PodPresence & { asked: string[] } => {
  const asked: string[] = [];
  return {
    asked,
    exists: (ns, name) => {
      asked.push(`${ns}/${name}`);
      return Promise.resolve(exists);
    },
  };
};

const defaultPool = (pools: { pools: ReadonlyMap<string, Pool> }): Pool => {
  const p = pools.pools.get('default');
  if (p === undefined) throw new Error('no default pool');
  return p;
};

describe('lease safety in the webhook', () => {
  it('a duplicate CREATE of a running sticky pod is denied and voids nothing', async () => {
    const pods = presence(true);
    const h = await harness(undefined, { pods });
    const first = await handleMutate(
      reviewWith('create-pod-statefulset', { uid: 'a' }),
      {},
      h.deps,
    );
    const held = annotations(first.review);
    const dup = await handleMutate(reviewWith('create-pod-statefulset', { uid: 'b' }), {}, h.deps);
    expect(dup.review.response?.allowed).toBe(false);
    expect(dup.review.response?.status?.code).toBe(409);
    expect(dup.review.response?.status?.message).toContain('is held by pod');
    expect(pods.asked).toHaveLength(1);
    const leases = await h.store.leases(defaultPool(h.pools));
    expect(leases.map(l => `${l.pool}/${l.id}`)).toEqual([held['podlease.io/lease']]);
  });

  it('a pending lease whose pod does not exist goes to the new pod of that name', async () => {
    const h = await harness(undefined, { pods: presence(false) });
    const first = annotations(
      (await handleMutate(reviewWith('create-pod-statefulset', { uid: 'a' }), {}, h.deps)).review,
    );
    const second = annotations(
      (await handleMutate(reviewWith('create-pod-statefulset', { uid: 'b' }), {}, h.deps)).review,
    );
    expect(second['podlease.io/ip']).toBe(first['podlease.io/ip']);
    expect(second['podlease.io/lease']).not.toBe(first['podlease.io/lease']);
    expect(await h.store.leases(defaultPool(h.pools))).toHaveLength(1);
  });

  it('a young pending lease is not taken over: an earlier create may still be in flight', async () => {
    const h = await harness(undefined, { pods: presence(false) });
    const deps = { ...h.deps, config: { ...h.deps.config, pendingTakeoverMs: 30_000 } };
    await handleMutate(reviewWith('create-pod-statefulset', { uid: 'a' }), {}, deps);
    const early = await handleMutate(reviewWith('create-pod-statefulset', { uid: 'b' }), {}, deps);
    expect(early.review.response?.status?.code).toBe(409);
    // 31 s later (the pending lease is old enough) the new pod gets the address.
    const later = { ...deps, now: () => Date.now() + 31_000 };
    const r = await handleMutate(reviewWith('create-pod-statefulset', { uid: 'c' }), {}, later);
    expect(r.review.response?.allowed).toBe(true);
  });

  it('the same request uid admitted twice gets one lease', async () => {
    const h = await harness();
    const review = reviewWith('create-pod-deployment', { uid: 'same' });
    const a = annotations((await handleMutate(review, {}, h.deps)).review);
    const b = annotations((await handleMutate(review, {}, h.deps)).review);
    expect(b).toEqual(a);
    expect((await h.store.stats(defaultPool(h.pools))).leased).toBe(1);
  });

  it('an allowed answer that would come after the API server gave up is a 503, and nothing stays leased', async () => {
    const h = await harness();
    // The clock jumps past the request's deadline while the store answers (a stalled event loop).
    let skew = 0;
    const store = new Proxy(h.store, {
      get(target, prop, receiver) {
        const v: unknown = Reflect.get(target, prop, receiver);
        if (prop === 'allocate' && typeof v === 'function') {
          return async (...args: unknown[]) => {
            const r: unknown = await (v as (...a: unknown[]) => Promise<unknown>).apply(
              target,
              args,
            );
            skew = 20_000;
            return r;
          };
        }
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const deps = { ...h.deps, store, now: () => Date.now() + skew };
    const { review } = await handleMutate(
      reviewWith('create-pod-deployment', { uid: 'late' }),
      { apiTimeoutMs: 10_000 },
      deps,
    );
    expect(review.response?.allowed).toBe(false);
    expect(review.response?.status?.code).toBe(503);
    expect(review.response?.status?.message).toContain('after the API server stopped waiting');
    await expect.poll(async () => (await h.store.stats(defaultPool(h.pools))).leased).toBe(0);
  });

  it('an edited ip-list admission the store answers too late is a 503: its lease goes, the reservation stays moved', async () => {
    const h = await harness(undefined, { pods: presence(false) });
    const pool = defaultPool(h.pools);
    const ipList = (list: string) => ({ 'podlease.io/ip-list': list });
    const first = await handleMutate(
      reviewWith('create-pod-statefulset', { uid: 'a', annotations: ipList('10.244.5.10') }),
      {},
      h.deps,
    );
    const lease = annotations(first.review)['podlease.io/lease'] ?? '';
    await h.store.release(pool, lease.slice(lease.indexOf('/') + 1)); // the pod is gone
    // The allocation runs, but its answer comes after the store timeout (a stalled Redis).
    const store = new Proxy(h.store, {
      get(target, prop, receiver) {
        const v: unknown = Reflect.get(target, prop, receiver);
        if (prop === 'allocate' && typeof v === 'function') {
          return async (...args: unknown[]) => {
            const r: unknown = await (v as (...a: unknown[]) => Promise<unknown>).apply(
              target,
              args,
            );
            await new Promise(resolve => setTimeout(resolve, 100));
            return r;
          };
        }
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const deps = { ...h.deps, store, config: { ...h.deps.config, storeTimeoutMs: 20 } };
    const { review } = await handleMutate(
      reviewWith('create-pod-statefulset', { uid: 'b', annotations: ipList('10.244.6.10') }),
      {},
      deps,
    );
    expect(review.response?.status?.code).toBe(503);
    await expect.poll(async () => (await h.store.leases(pool)).length).toBe(0);
    // The move is the allocation's, not the lease's: the next try of web-0 finds it done.
    expect(await h.store.reservations(pool)).toMatchObject([
      { key: 'default/web/0', ip: '10.244.6.10' },
    ]);
    expect((await h.store.stats(pool)).leased).toBe(1); // 10.244.5.10 went back to the pool
  });
});
