import { describe, expect, it } from 'vitest';
import { BadPodError, BadReviewError } from '../../../src/webhook/errors.js';
import {
  allow,
  deny,
  isPodRequest,
  parseAdmissionReview,
  toAdmissionReview,
  toPodView,
} from '../../../src/webhook/review.js';
import { loadReview } from '../../fixtures/admission/load.js';

describe('parseAdmissionReview', () => {
  it('reads a Deployment pod CREATE (generateName, no name, no uid)', () => {
    const { apiVersion, request } = parseAdmissionReview(loadReview('create-pod-deployment'));
    expect(apiVersion).toBe('admission.k8s.io/v1');
    expect(request.uid).toBe('705ab4f5-6393-11e8-b7cc-42010a800002');
    expect(request.operation).toBe('CREATE');
    expect(request.dryRun).toBe(false);
    expect(isPodRequest(request)).toBe(true);
    const pod = toPodView(request.object);
    expect(pod.name).toBeUndefined();
    expect(pod.generateName).toBe('web-7d9f8b6c5d-');
    expect(pod.annotations).toBeUndefined();
    expect(pod.hostNetwork).toBe(false);
  });

  it('reads a StatefulSet pod (name, ownerReferences, pod-index label)', () => {
    const { request } = parseAdmissionReview(loadReview('create-pod-statefulset'));
    const pod = toPodView(request.object);
    expect(pod.name).toBe('web-0');
    expect(pod.ownerReferences[0]).toMatchObject({ kind: 'StatefulSet', name: 'web' });
    expect(pod.labels['apps.kubernetes.io/pod-index']).toBe('0');
  });

  it('rejects what is not an AdmissionReview', () => {
    expect(() => parseAdmissionReview('hello')).toThrow(BadReviewError);
    expect(() => parseAdmissionReview({ kind: 'Pod', apiVersion: 'v1' })).toThrow(
      /expected kind AdmissionReview/,
    );
    const noUid = loadReview('create-pod-deployment');
    noUid.request.uid = '';
    expect(() => parseAdmissionReview(noUid)).toThrow(/request.uid/);
    const noRequest: Record<string, unknown> = { ...loadReview('create-pod-deployment') };
    delete noRequest.request;
    expect(() => parseAdmissionReview(noRequest)).toThrow(/no request/);
  });

  it('treats pods/status and other kinds as not a pod', () => {
    const r = loadReview('create-pod-deployment');
    r.request.subResource = 'status';
    expect(isPodRequest(parseAdmissionReview(r).request)).toBe(false);
  });

  it('rejects a malformed pod object', () => {
    expect(() => toPodView({ metadata: { annotations: { a: 1 } } })).toThrow(BadPodError);
    expect(() => toPodView(null)).toThrow(/not a pod/);
  });
});

describe('response envelope', () => {
  it('echoes the uid, base64-encodes the patch and declares JSONPatch', () => {
    const review = toAdmissionReview(
      allow('u1', [{ op: 'add', path: '/metadata/annotations', value: { a: 'b' } }]),
    );
    expect(review).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
    expect(review.response?.uid).toBe('u1');
    expect(review.response?.patchType).toBe('JSONPatch');
    expect(JSON.parse(Buffer.from(review.response?.patch ?? '', 'base64').toString())).toEqual([
      { op: 'add', path: '/metadata/annotations', value: { a: 'b' } },
    ]);
  });

  it('allows without a patch when there is nothing to write', () => {
    expect(allow('u2', [])).toEqual({ uid: 'u2', allowed: true });
  });

  it('prefixes denials with podlease: once', () => {
    expect(deny('u3', 403, 'nope').status).toEqual({ code: 403, message: 'podlease: nope' });
    expect(deny('u3', 403, 'podlease: nope').status?.message).toBe('podlease: nope');
  });
});
