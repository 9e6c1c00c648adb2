/**
 * The AdmissionReviews kube-apiserver v1.34 really sent to podlease in the e2e run
 * (test/e2e/capture.test.ts), fed through the handlers with the memory store and the dev pool.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/config/config.js';
import { DEV_POOLS_DOCUMENT, type Pool } from '../../../src/pool/pools-file.js';
import { ipToIndex } from '../../../src/pool/layout.js';
import { handleMutate, handleValidate } from '../../../src/webhook/handlers.js';
import { applyAnnotationPatch } from '../../../src/webhook/patch.js';
import { decodePatch, harness, type Harness } from './helpers.js';

type Captured =
  | 'create-pod-deployment'
  | 'create-pod-statefulset'
  | 'create-pod-dryrun'
  | 'update-pod-owned-change';

interface CapturedReview {
  request: {
    uid: string;
    userInfo: { username?: string };
    object: { metadata: { annotations?: Record<string, string> } };
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

const cache = new Map<Captured, CapturedReview>();

/** A deep clone of a captured review per call. */
const captured = (name: Captured): CapturedReview => {
  let doc = cache.get(name);
  if (doc === undefined) {
    const url = new URL(`../../fixtures/admission/captured/${name}.json`, import.meta.url);
    doc = JSON.parse(readFileSync(url, 'utf8')) as CapturedReview;
    cache.set(name, doc);
  }
  return structuredClone(doc);
};

const NAMESPACE = 'podlease-capture';

const devPool = (h: Harness): Pool => {
  const pool = h.pools.pools.get('default');
  if (pool === undefined) throw new Error('no dev pool');
  return pool;
};

/** The pod's annotations after podlease's patch. */
const admitted = async (
  h: Harness,
  name: Captured,
  uid?: string,
): Promise<Record<string, string>> => {
  const review = captured(name);
  // Another request uid is another admission; the same uid is an API server retry.
  if (uid !== undefined) review.request.uid = uid;
  const { review: answer, outcome } = await handleMutate(review, {}, h.deps);
  expect(outcome).toBe('allowed');
  expect(answer.response).toMatchObject({
    uid: review.request.uid,
    allowed: true,
    patchType: 'JSONPatch',
  });
  return (
    applyAnnotationPatch(review.request.object.metadata.annotations, decodePatch(answer)) ?? {}
  );
};

describe('captured AdmissionReviews (kube-apiserver v1.34.4)', () => {
  it('Deployment pod: leases an address of the dev pool and patches the owned annotations', async () => {
    const h = await harness(DEV_POOLS_DOCUMENT);
    const pool = devPool(h);
    const ann = await admitted(h, 'create-pod-deployment');
    const ip = ann['podlease.io/ip'] ?? '';
    expect(ipToIndex(pool.layout, ip)).toBeDefined();
    expect(ip).not.toBe('10.244.0.1');
    expect(ann).toMatchObject({
      'podlease.io/cidr': '10.244.0.0/16',
      'podlease.io/gateway': '10.244.0.1',
      'podlease.io/pool': 'default',
    });
    expect(ann['podlease.io/lease']).toMatch(/^default\/[0-9A-HJKMNP-TV-Z]{26}$/);
    const leases = await h.store.leases(pool);
    expect(leases).toHaveLength(1);
    expect(leases[0]).toMatchObject({
      ip,
      state: 'pending',
      namespace: NAMESPACE,
      generateName: 'web-cfddb664d-',
    });
    expect(`default/${leases[0]?.id ?? ''}`).toBe(ann['podlease.io/lease']);
  });

  it('StatefulSet pod db-0 (sticky): reserves the ordinal, and gives it the same address again', async () => {
    const h = await harness(DEV_POOLS_DOCUMENT);
    const pool = devPool(h);
    const first = await admitted(h, 'create-pod-statefulset');
    expect(first['podlease.io/sticky']).toBe('true');
    expect(ipToIndex(pool.layout, first['podlease.io/ip'] ?? '')).toBeDefined();
    const lease = (await h.store.leases(pool)).find(
      l => `default/${l.id}` === first['podlease.io/lease'],
    );
    expect(lease).toMatchObject({
      name: 'db-0',
      namespace: NAMESPACE,
      stickyKey: `${NAMESPACE}/db/0`,
    });
    await admitted(h, 'create-pod-deployment');
    const again = await admitted(h, 'create-pod-statefulset', 'a-later-admission');
    expect(again['podlease.io/ip']).toBe(first['podlease.io/ip']);
    expect(again['podlease.io/lease']).not.toBe(first['podlease.io/lease']);
  });

  it('dry run: allowed, no patch, nothing leased', async () => {
    const h = await harness(DEV_POOLS_DOCUMENT);
    const review = captured('create-pod-dryrun');
    expect(review.request.dryRun).toBe(true);
    const { review: answer, outcome } = await handleMutate(review, {}, h.deps);
    expect(outcome).toBe('dry_run');
    expect(answer.response).toEqual({ uid: review.request.uid, allowed: true });
    expect(await h.store.leases(devPool(h))).toEqual([]);
    expect((await h.store.stats(devPool(h))).leased).toBe(0);
  });

  it('UPDATE changing podlease.io/ip by a user: denied 403 with the podlease message', async () => {
    const h = await harness(DEV_POOLS_DOCUMENT);
    const review = captured('update-pod-owned-change');
    const { review: answer, outcome } = await handleValidate(review, {}, h.deps);
    expect(outcome).toBe('denied');
    expect(answer.response).toMatchObject({
      uid: review.request.uid,
      allowed: false,
      status: { code: 403 },
    });
    expect(answer.response?.status?.message).toMatch(
      /^podlease: podlease\.io\/ip is set by podlease and cannot be changed or removed on a running pod \(by podlease-e2e-admin\)/,
    );
  });

  it("the same UPDATE by podlease's own service account is allowed", async () => {
    const h = await harness(DEV_POOLS_DOCUMENT);
    const review = captured('update-pod-owned-change');
    review.request.userInfo.username = DEFAULTS.serviceAccount;
    const { review: answer } = await handleValidate(review, {}, h.deps);
    expect(answer.response).toEqual({ uid: review.request.uid, allowed: true });
  });
});
