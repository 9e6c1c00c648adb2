import { DEFAULTS } from '../../../src/config/config.js';
/**
 * Item 11 of the lease-safety issue, webhook side: each message names what was actually wrong.
 * A wrongly typed request.uid is not "missing", an empty body is not "kind undefined", and an
 * unusable pod-index label is not "absent".
 */
import { describe, expect, it } from 'vitest';
import { toPoolSet } from '../../../src/pool/pools-file.js';
import { decide } from '../../../src/webhook/decide.js';
import { BadAnnotationError, BadReviewError } from '../../../src/webhook/errors.js';
import { handleMutate } from '../../../src/webhook/handlers.js';
import { parseAdmissionReview, toPodView } from '../../../src/webhook/review.js';
import { statefulSetIdentity } from '../../../src/webhook/statefulset.js';
import { loadReview, reviewWith } from '../../fixtures/admission/load.js';
import { harness, V4_ONLY_POOLS } from './helpers.js';

const reviewError = (body: unknown): BadReviewError => {
  try {
    parseAdmissionReview(body);
  } catch (e) {
    if (e instanceof BadReviewError) return e;
    throw e;
  }
  throw new Error('expected a BadReviewError');
};

const withUid = (uid: unknown): unknown => {
  const r = loadReview('create-pod-deployment');
  return { ...r, request: { ...r.request, uid } };
};

describe('AdmissionReview envelope messages', () => {
  it('says request.uid must be a string when it has another type', () => {
    for (const [uid, got] of [
      [42, 'number 42'],
      [true, 'boolean true'],
      [null, 'null'],
      [{ a: 1 }, 'an object'],
      [['x'], 'a list of 1'],
    ] as const) {
      const err = reviewError(withUid(uid));
      expect(err.code).toBe('BAD_REVIEW');
      expect(err.message).toBe(`request.uid must be a string, got ${got}`);
    }
  });

  it('says request.uid is missing only when it is absent, and empty when it is ""', () => {
    expect(reviewError(withUid(undefined)).message).toMatch(/^request\.uid is missing/);
    expect(reviewError(withUid('')).message).toMatch(/^request\.uid is empty/);
  });

  it('says the body is empty, not "kind undefined"', () => {
    for (const body of [undefined, '', {}]) {
      const err = reviewError(body);
      expect(err.message).toBe('the body is empty; POST an AdmissionReview (a JSON object)');
      expect(err.message).not.toContain('undefined');
    }
  });

  it('says what the body is when it is JSON but not an object', () => {
    expect(reviewError([1, 2, 3]).message).toBe(
      'the body is not a JSON object but a list of 3; POST an AdmissionReview',
    );
    expect(reviewError(7).message).toMatch(/not a JSON object but number 7/);
  });

  it('names an absent kind or apiVersion as absent, and quotes a present one short', () => {
    expect(reviewError({ request: {} }).message).toBe(
      'expected kind AdmissionReview, apiVersion admission.k8s.io/v1; got no kind, no apiVersion',
    );
    const err = reviewError({ kind: 'k'.repeat(100_000), apiVersion: 3 });
    expect(err.message).toContain('got kind "kkk');
    expect(err.message).toContain('…(99936 more characters), apiVersion number 3');
    expect(err.message.length).toBeLessThan(300);
  });

  it('quotes a bad operation short', () => {
    const r = loadReview('create-pod-deployment');
    r.request.operation = 'X'.repeat(10_000);
    const err = reviewError(r);
    expect(err.message).toMatch(/^request\.operation must be CREATE, UPDATE, DELETE or CONNECT/);
    expect(err.message.length).toBeLessThan(300);
  });
});

describe('pod-index label messages', () => {
  const pools = toPoolSet(V4_ONLY_POOLS);

  const withIndex = (index: string, podName = 'web-0') => {
    const r = reviewWith('create-pod-statefulset', { podName });
    const pod = r.request.object;
    if (pod?.metadata.labels === undefined) throw new Error('fixture has no labels');
    pod.metadata.labels['apps.kubernetes.io/pod-index'] = index;
    return toPodView(pod);
  };

  for (const index of ['-1', 'abc', '1e21', '01', '1234567890', '']) {
    it(`reports pod-index ${JSON.stringify(index)} as not a valid ordinal, not as absent`, () => {
      // The name web-0 would give ordinal 0: the unusable label is reported, not overridden.
      const id = statefulSetIdentity(withIndex(index));
      expect(id).toMatchObject({ ok: false, check: 'label' });
      const reason = id.ok ? '' : id.reason;
      expect(reason).toContain(
        `apps.kubernetes.io/pod-index label ${JSON.stringify(index)} is not a valid ordinal`,
      );
      expect(reason).not.toContain('no apps.kubernetes.io/pod-index label');
    });
  }

  it('denies a sticky pod with an unusable pod-index with 400 naming the label, not "not a StatefulSet pod"', async () => {
    let err: unknown;
    try {
      decide({
        namespace: 'default',
        pod: withIndex('1e21', 'web-x'),
        namespaceAnnotations: undefined,
        pools,
        userInfo: { username: 'system:kube-controller-manager' },
        statefulSetCreators: DEFAULTS.statefulSetCreators,
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BadAnnotationError);
    const message = (err as BadAnnotationError).message;
    expect(message).toContain(
      'podlease.io/sticky: the apps.kubernetes.io/pod-index label "1e21" is not a valid ordinal',
    );
    expect(message).not.toContain('this pod is not one');

    const h = await harness();
    const r = reviewWith('create-pod-statefulset', {});
    const labels = r.request.object?.metadata.labels;
    if (labels === undefined) throw new Error('fixture has no labels');
    labels['apps.kubernetes.io/pod-index'] = '-1';
    const { review } = await handleMutate(r, {}, h.deps);
    expect(review.response?.status?.code).toBe(400);
    expect(review.response?.status?.message).toMatch(
      /^podlease: podlease\.io\/sticky: the apps\.kubernetes\.io\/pod-index label "-1" is not a valid ordinal/,
    );
  });

  it('still reads a valid label that agrees with the name', () => {
    expect(statefulSetIdentity(withIndex('7', 'web-7'))).toEqual({
      ok: true,
      identity: { statefulSet: 'web', ordinal: 7 },
    });
  });
});
