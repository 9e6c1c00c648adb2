import { describe, expect, it } from 'vitest';
import type { Pool } from '../../../src/pool/pools-file.js';
import type { AllocateRequest, Allocation, LeaseStore } from '../../../src/pool/store.js';
import { newLeaseId } from '../../../src/pool/lease-id.js';
import { handleMutate, handleValidate } from '../../../src/webhook/handlers.js';
import { staticNamespaces } from '../../../src/webhook/namespaces.js';
import { applyAnnotationPatch } from '../../../src/webhook/patch.js';
import { BadReviewError } from '../../../src/webhook/errors.js';
import { loadReview, reviewWith } from '../../fixtures/admission/load.js';
import { decodePatch, harness, TEST_POOLS, V4_ONLY_POOLS, WEBHOOK_CONFIG } from './helpers.js';

const leasedCount = async (store: LeaseStore, pool: Pool | undefined): Promise<number> => {
  if (pool === undefined) throw new Error('no pool');
  return (await store.stats(pool)).leased;
};

describe('handleMutate', () => {
  it('leases an address to a Deployment pod and adds metadata.annotations', async () => {
    const h = await harness();
    const { review, outcome } = await handleMutate(loadReview('create-pod-deployment'), {}, h.deps);
    expect(outcome).toBe('allowed');
    expect(review.response).toMatchObject({
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      allowed: true,
      patchType: 'JSONPatch',
    });
    const ops = decodePatch(review);
    expect(ops).toHaveLength(1);
    expect(ops[0]).toMatchObject({ op: 'add', path: '/metadata/annotations' });
    const ann = applyAnnotationPatch(undefined, ops) ?? {};
    expect(ann['podlease.io/ip']).toBe('10.244.0.2');
    expect(ann['podlease.io/cidr']).toBe('10.244.0.0/16');
    expect(ann['podlease.io/gateway']).toBe('10.244.0.1');
    expect(ann['podlease.io/pool']).toBe('default');
    expect(ann['podlease.io/lease']).toMatch(/^default\/[0-9A-HJKMNP-TV-Z]{26}$/);
    const leases = await h.store.leases(h.pools.pools.get('default')!);
    expect(leases).toHaveLength(1);
    expect(leases[0]).toMatchObject({
      state: 'pending',
      namespace: 'default',
      generateName: 'web-7d9f8b6c5d-',
      ip: '10.244.0.2',
    });
    expect(`default/${leases[0]?.id}`).toBe(ann['podlease.io/lease']);
  });

  it('gives a sticky web-0 the same address twice, under a new lease id', async () => {
    const h = await harness();
    const first =
      applyAnnotationPatch(
        {},
        decodePatch((await handleMutate(loadReview('create-pod-statefulset'), {}, h.deps)).review),
      ) ?? {};
    await handleMutate(loadReview('create-pod-deployment'), {}, h.deps);
    // A new admission (another request uid): the pod of the first one is gone.
    const review = withUid(loadReview('create-pod-statefulset'), 'second-admission');
    const second =
      applyAnnotationPatch({}, decodePatch((await handleMutate(review, {}, h.deps)).review)) ?? {};
    expect(second['podlease.io/ip']).toBe(first['podlease.io/ip']);
    expect(second['podlease.io/lease']).not.toBe(first['podlease.io/lease']);
    // A retry of the second admission (same uid) gets the very same lease.
    const retry =
      applyAnnotationPatch({}, decodePatch((await handleMutate(review, {}, h.deps)).review)) ?? {};
    expect(retry['podlease.io/lease']).toBe(second['podlease.io/lease']);
  });

  it("denies a forged StatefulSet identity and leaves web-0's address and lease alone", async () => {
    const h = await harness();
    const pool = h.pools.pools.get('default')!;
    const real = await handleMutate(loadReview('create-pod-statefulset'), {}, h.deps);
    const ip = (applyAnnotationPatch({}, decodePatch(real.review)) ?? {})['podlease.io/ip'];
    const before = await h.store.leases(pool);
    expect(before).toHaveLength(1);
    // `evil`, by alice, with web-0's ownerReference and pod-index label copied.
    const forge = (name: string): ReturnType<typeof loadReview> => {
      const r = reviewWith('create-pod-statefulset', { uid: `forged-${name}` });
      const meta = r.request.object!.metadata;
      meta.name = name;
      delete meta.generateName;
      meta.labels = { 'apps.kubernetes.io/pod-index': '0' };
      r.request.name = name;
      r.request.userInfo = { username: 'alice', groups: ['system:authenticated'] };
      return r;
    };
    const status = async (name: string): Promise<unknown> =>
      (await handleMutate(forge(name), {}, h.deps)).review.response?.status;
    expect(await status('evil')).toEqual({
      code: 400,
      message: expect.stringMatching(
        /^podlease: podlease.io\/sticky: pod "evil" is not named web-<ordinal>/,
      ) as unknown,
    });
    expect(await status('web-0')).toEqual({
      code: 403,
      message: expect.stringMatching(
        /^podlease: podlease.io\/sticky: pod "web-0" was created by "alice", which may not create StatefulSet pods \(allowed: .*\); .*set --statefulset-creators$/,
      ) as unknown,
    });
    expect(await h.store.leases(pool)).toEqual(before);
    const again = await handleMutate(loadReview('create-pod-statefulset'), {}, h.deps);
    expect((applyAnnotationPatch({}, decodePatch(again.review)) ?? {})['podlease.io/ip']).toBe(ip);
  });

  it('replaces a forged podlease.io/lease and removes forged keys', async () => {
    const h = await harness({ pools: [{ name: 'default', cidr: '10.244.0.0/16', default: true }] });
    const { review } = await handleMutate(loadReview('create-pod-forged-lease'), {}, h.deps);
    const before = loadReview('create-pod-forged-lease').request.object?.metadata.annotations;
    const after = applyAnnotationPatch(before, decodePatch(review)) ?? {};
    expect(after['podlease.io/lease']).not.toBe('default/01JD3ZK0000000000000000000');
    expect(after['podlease.io/lease']).toMatch(/^default\//);
    expect(after['podlease.io/ip']).toBe('10.244.0.1');
    expect(after['podlease.io/gateway']).toBeUndefined(); // the pool has none: forged value removed
    expect(after.team).toBe('blue');
  });

  it('leases nothing and patches nothing on dryRun, but still denies as the real request would', async () => {
    const h = await harness();
    const { review, outcome } = await handleMutate(loadReview('create-pod-dryrun'), {}, h.deps);
    expect(outcome).toBe('dry_run');
    expect(review.response).toEqual({ uid: '9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4', allowed: true });
    expect(await leasedCount(h.store, h.pools.pools.get('default'))).toBe(0);
    const bad = reviewWith('create-pod-dryrun', { annotations: { 'podlease.io/pool': 'nope' } });
    expect((await handleMutate(bad, {}, h.deps)).review.response?.status?.code).toBe(404);
  });

  it('denies the 14th pod of a /28 with a gateway as exhausted, with the counts (403)', async () => {
    const h = await harness();
    const small = h.pools.pools.get('small');
    const ips = new Set<string>();
    for (let i = 0; i < 13; i++) {
      const r = reviewWith('create-pod-deployment', {
        uid: `u${i}`,
        annotations: { 'podlease.io/pool': 'small' },
      });
      const { review } = await handleMutate(r, {}, h.deps);
      expect(review.response?.allowed).toBe(true);
      ips.add(applyAnnotationPatch({}, decodePatch(review))?.['podlease.io/ip'] ?? '');
    }
    expect(ips.size).toBe(13);
    const dry = reviewWith('create-pod-deployment', {
      uid: 'dry',
      annotations: { 'podlease.io/pool': 'small' },
      dryRun: true,
    });
    expect((await handleMutate(dry, {}, h.deps)).review.response?.status?.code).toBe(403);
    const r14 = reviewWith('create-pod-deployment', {
      uid: 'u14',
      annotations: { 'podlease.io/pool': 'small' },
    });
    const { review, outcome, pool } = await handleMutate(r14, {}, h.deps);
    expect(outcome).toBe('denied');
    expect(pool).toBe('small');
    expect(review.response?.allowed).toBe(false);
    expect(review.response?.status?.code).toBe(403);
    expect(review.response?.status?.message).toMatch(
      /^podlease: pool "small" is exhausted: 13 of 13 addresses leased; /,
    );
    expect(await leasedCount(h.store, small)).toBe(13);
  });

  it('keeps a released address out for --reuse-cooldown: a full pool answers 503 saying when', async () => {
    let clock = Date.parse('2026-06-01T12:00:00.000Z');
    const h = await harness(V4_ONLY_POOLS, {
      config: { ...WEBHOOK_CONFIG, reuseCooldownMs: 60_000 },
      now: () => clock,
    });
    const small = h.pools.pools.get('small')!;
    const admit = (uid: string) =>
      handleMutate(
        reviewWith('create-pod-deployment', { uid, annotations: { 'podlease.io/pool': 'small' } }),
        {},
        h.deps,
      );
    for (let i = 0; i < 13; i++) expect((await admit(`u${i}`)).review.response?.allowed).toBe(true);
    const [gone] = await h.store.leases(small);
    await h.store.release(small, gone!.id, { now: clock });
    clock += 18_000;
    const { review } = await admit('u13');
    expect(review.response?.status?.code).toBe(503);
    expect(review.response?.status?.message).toBe(
      'podlease: pool "small" has no free address: 12 of 13 leased, 1 released and cooling down ' +
        '(reuse-cooldown 60s), the first free again at 2026-06-01T12:01:00.000Z (in 42s); ' +
        "the pod's controller retries and gets one then, or delete pods or sticky reservations " +
        'that use the pool, or add addresses to it',
    );
    clock += 42_000;
    const again = await admit('u14');
    expect(applyAnnotationPatch({}, decodePatch(again.review))?.['podlease.io/ip']).toBe(gone!.ip);
  });

  it('denies an address held by another pod, naming it (409)', async () => {
    const h = await harness();
    await handleMutate(
      reviewWith('create-pod-statefulset', {
        annotations: { 'podlease.io/static-ip': '10.244.3.3' },
      }),
      {},
      h.deps,
    );
    const { review } = await handleMutate(loadReview('create-pod-static-ip'), {}, h.deps);
    expect(review.response?.status?.code).toBe(409);
    expect(review.response?.status?.message).toMatch(
      /address 10.244.3.3 of pool "default" is held by pod default\/web-0/,
    );
    const third = reviewWith('create-pod-static-ip', { uid: 'x' });
    await handleMutate(
      reviewWith('create-pod-static-ip', {
        annotations: { 'podlease.io/static-ip': '10.244.3.4' },
      }),
      {},
      h.deps,
    );
    third.request.object!.metadata.annotations = { 'podlease.io/static-ip': '10.244.3.4' };
    expect((await handleMutate(third, {}, h.deps)).review.response?.status?.message).toMatch(
      /held by a pod of default\/web-7d9f8b6c5d-\* not yet named/,
    );
  });

  it('maps each decision error to its status code, prefixed podlease:', async () => {
    const h = await harness();
    const code = async (r: unknown): Promise<[number | undefined, string | undefined]> => {
      const s = (await handleMutate(r, {}, h.deps)).review.response?.status;
      return [s?.code, s?.message];
    };
    expect(await code(loadReview('create-pod-bad-address'))).toEqual([
      400,
      expect.stringMatching(/^podlease: podlease.io\/static-ip/),
    ]);
    expect(await code(loadReview('create-pod-unknown-pool'))).toEqual([
      404,
      expect.stringContaining('known pools: default, small, team, v6'),
    ]);
    expect(
      await code(
        reviewWith('create-pod-deployment', { annotations: { 'podlease.io/pool': 'team' } }),
      ),
    ).toEqual([403, expect.stringContaining('may not use pool "team"')]);
    expect(
      await code(
        reviewWith('create-pod-deployment', { annotations: { 'podlease.io/sticky': 'true' } }),
      ),
    ).toEqual([400, expect.stringContaining('StatefulSet pods only')]);
    expect(await leasedCount(h.store, h.pools.pools.get('default'))).toBe(0);
  });

  it('denies 503 when the namespace cannot be looked up, rather than guessing it has no pool', async () => {
    const h = await harness(undefined, {
      namespaces: {
        annotations: () =>
          Promise.reject(new Error('no answer to GET namespace default within 1000 ms')),
        ready: () => false,
      },
    });
    const { review, outcome } = await handleMutate(loadReview('create-pod-deployment'), {}, h.deps);
    expect(outcome).toBe('denied');
    expect(review.response?.status).toEqual({
      code: 503,
      message: expect.stringMatching(
        /^podlease: cannot read namespace "default" \(for its podlease.io\/pool annotation\): .*lookup failed: no answer to GET namespace default within 1000 ms; the API server retries the pod/,
      ) as unknown,
    });
    expect(await leasedCount(h.store, h.pools.pools.get('default'))).toBe(0);
  });

  it('uses namespace annotations from the injected lookup', async () => {
    const h = await harness(undefined, {
      namespaces: staticNamespaces({ default: { 'podlease.io/pool': 'small' } }),
    });
    const { review } = await handleMutate(loadReview('create-pod-deployment'), {}, h.deps);
    const ann = applyAnnotationPatch(undefined, decodePatch(review)) ?? {};
    expect(ann['podlease.io/ip']).toBe('10.250.0.2');
    expect(ann['podlease.io/pool']).toBe('small');
  });

  it('skips hostNetwork and ignored pods without a lease', async () => {
    const h = await harness();
    expect(
      (await handleMutate(loadReview('create-pod-hostnetwork'), {}, h.deps)).review.response,
    ).toEqual({
      uid: '2f0e1d3c-4b5a-4968-8776-a5b4c3d2e1f0',
      allowed: true,
    });
    const ignored = reviewWith('create-pod-deployment', {
      annotations: { 'podlease.io/ignore': 'true', 'podlease.io/ip': '1.2.3.4' },
    });
    const { review } = await handleMutate(ignored, {}, h.deps);
    expect(decodePatch(review)).toEqual([
      { op: 'remove', path: '/metadata/annotations/podlease.io~1ip' },
    ]);
    expect(await leasedCount(h.store, h.pools.pools.get('default'))).toBe(0);
  });

  it('allows operations other than pod CREATE untouched', async () => {
    const h = await harness();
    const del = loadReview('create-pod-deployment');
    del.request.operation = 'DELETE';
    expect((await handleMutate(del, {}, h.deps)).review.response).toEqual({
      uid: del.request.uid,
      allowed: true,
    });
  });

  it('throws BadReviewError for a body that is not an AdmissionReview', async () => {
    const h = await harness();
    await expect(handleMutate({ hello: 'world' }, {}, h.deps)).rejects.toBeInstanceOf(
      BadReviewError,
    );
  });
});

describe('handleMutate: dual-stack', () => {
  it('leases one address per family with comma lists, IPv4 first', async () => {
    const h = await harness(TEST_POOLS);
    const ann =
      applyAnnotationPatch(
        undefined,
        decodePatch((await handleMutate(loadReview('create-pod-deployment'), {}, h.deps)).review),
      ) ?? {};
    expect(ann['podlease.io/ip']).toBe('10.244.0.2,fd00:10::100');
    expect(ann['podlease.io/cidr']).toBe('10.244.0.0/16,fd00:10::/64');
    expect(ann['podlease.io/gateway']).toBe('10.244.0.1,');
    expect(ann['podlease.io/pool']).toBe('default,v6');
    expect(ann['podlease.io/lease']).toMatch(/^default\/\w{26},v6\/\w{26}$/);
  });

  it('releases the first family when the second fails: nothing leased by a denied request', async () => {
    const h = await harness(TEST_POOLS);
    const v6 = h.pools.pools.get('v6b')!;
    // fill v6b (fd00:20::/120: 255 addresses)
    for (let i = 0; i < v6.layout.size; i++) {
      await h.store.allocate({
        pool: v6,
        leaseId: newLeaseId(),
        pod: { namespace: 'x' },
        ttlMs: 60_000,
      });
    }
    const r = reviewWith('create-pod-deployment', {
      annotations: { 'podlease.io/pool': 'small,v6b' },
    });
    const { review } = await handleMutate(r, {}, h.deps);
    expect(review.response?.status?.code).toBe(403);
    expect(review.response?.status?.message).toMatch(/pool "v6b" is exhausted: 255 of 255/);
    expect(await leasedCount(h.store, h.pools.pools.get('small'))).toBe(0);
  });
});

/** A store whose allocate never answers within the budget. */
const slowStore = (inner: LeaseStore, delayMs: number, landed: Allocation[] = []): LeaseStore => {
  const allocate = (req: AllocateRequest): Promise<Allocation> =>
    new Promise((resolve, reject) => {
      setTimeout(() => {
        inner.allocate(req).then(a => {
          landed.push(a);
          resolve(a);
        }, reject);
      }, delayMs);
    });
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'allocate') return allocate;
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
};

describe('handleMutate: time budget', () => {
  it('answers 503 fast when the store does not answer, and releases the late allocation', async () => {
    const h = await harness();
    const landed: Allocation[] = [];
    const slow = slowStore(h.store, 300, landed);
    const deps = { ...h.deps, store: slow, config: { ...h.deps.config, storeTimeoutMs: 100 } };
    const t0 = Date.now();
    const { review } = await handleMutate(loadReview('create-pod-deployment'), {}, deps);
    // Answered before the store would have: the 503 comes from the 100 ms budget, not the store.
    expect(Date.now() - t0).toBeLessThan(300);
    expect(review.response?.status?.code).toBe(503);
    // The message names the time actually waited: the budget less the ms already spent.
    const message = review.response?.status?.message ?? '';
    expect(message).toMatch(
      /^podlease: lease store unavailable: no answer to allocate in pool "default" within (\d+) ms/,
    );
    const waited = Number(/within (\d+) ms/.exec(message)?.[1]);
    expect(waited).toBeGreaterThan(80);
    expect(waited).toBeLessThanOrEqual(100);
    // The late allocation lands in the store after the answer, and is given back.
    await expect.poll(() => landed.length).toBe(1);
    await expect.poll(() => leasedCount(h.store, h.pools.pools.get('default'))).toBe(0);
  });

  it("honours the API server's ?timeout= when it is shorter than the store timeout", async () => {
    const h = await harness();
    const deps = {
      ...h.deps,
      store: slowStore(h.store, 400),
      config: { ...h.deps.config, storeTimeoutMs: 5_000 },
    };
    const t0 = Date.now();
    const { review } = await handleMutate(
      loadReview('create-pod-deployment'),
      { apiTimeoutMs: 200 },
      deps,
    );
    expect(Date.now() - t0).toBeLessThan(350);
    expect(review.response?.status?.code).toBe(503);
  });
});

describe('handleValidate', () => {
  it('denies a user changing an owned annotation (403)', async () => {
    const h = await harness();
    const { review } = await handleValidate(loadReview('update-pod-owned-change'), {}, h.deps);
    expect(review.response?.allowed).toBe(false);
    expect(review.response?.status?.code).toBe(403);
    expect(review.response?.status?.message).toMatch(
      /^podlease: podlease.io\/ip is set by podlease and cannot be changed or removed on a running pod \(by jane@example.com\)/,
    );
  });

  it("allows podlease's own service account, and updates that leave owned keys alone", async () => {
    const h = await harness();
    const own = loadReview('update-pod-owned-change');
    own.request.userInfo.username = 'system:serviceaccount:podlease:podlease';
    expect((await handleValidate(own, {}, h.deps)).review.response?.allowed).toBe(true);
    const other = loadReview('update-pod-owned-change');
    other.request.object!.metadata.annotations!['podlease.io/ip'] = '10.244.0.2';
    expect((await handleValidate(other, {}, h.deps)).review.response?.allowed).toBe(true);
  });

  it('denies removing an owned annotation and changing podlease.io/pool', async () => {
    const h = await harness();
    const r = loadReview('update-pod-owned-change');
    const ann = r.request.object!.metadata.annotations!;
    ann['podlease.io/ip'] = '10.244.0.2';
    delete ann['podlease.io/lease'];
    ann['podlease.io/pool'] = 'small';
    const { review } = await handleValidate(r, {}, h.deps);
    expect(review.response?.status?.message).toMatch(
      /podlease.io\/lease, podlease.io\/pool are set by podlease/,
    );
  });

  it('respects a configured service account username', async () => {
    const h = await harness();
    const deps = { ...h.deps, config: { ...h.deps.config, serviceAccount: 'jane@example.com' } };
    expect(
      (await handleValidate(loadReview('update-pod-owned-change'), {}, deps)).review.response
        ?.allowed,
    ).toBe(true);
  });
});

/** The review with another request uid: a new admission, not a retry. */
function withUid<T>(review: T, uid: string): T {
  const r = review as { request?: { uid?: string } };
  if (r.request !== undefined) r.request.uid = uid;
  return review;
}
