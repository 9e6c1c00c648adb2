// The AdmissionReview bodies this kube-apiserver really sends to podlease — a Deployment pod, a
// StatefulSet pod, a server-side dry run, an UPDATE — recorded by a proxy between the API server
// and `podlease serve` (startPodlease({ capture: true })).
//
// The committed copies under test/fixtures/admission/captured/ feed the webhook's unit tests
// (test/unit/webhook/captured.test.ts). Every run checks that they still have the shape the API
// server sends (same fields, same operation, dryRun, userInfo kind); PODLEASE_CAPTURE_WRITE=1
// rewrites them from this run.
/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- @kubernetes/client-node's
   generated models are classes without behaviour; its API is meant to take object literals. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { DEV_POOLS_DOCUMENT } from '../../src/pool/pools-file.js';
import { waitUntil } from './cluster/wait.js';
import {
  apiErrorCode,
  type CapturedExchange,
  type Json,
  type Podlease,
  startPodlease,
} from './podlease.js';

const skip = inject('e2eSkip');
if (skip) console.warn(`\n!! SKIPPING AdmissionReview capture: ${skip}\n`);

export const CAPTURED_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../fixtures/admission/captured',
);
const WRITE = process.env.PODLEASE_CAPTURE_WRITE === '1';
// A fixed namespace keeps the fixtures stable from one capture to the next.
const NAMESPACE = 'podlease-capture';
const CONTAINER = { name: 'app', image: 'registry.invalid/never-pulled:1' };
const MERGE_PATCH = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

interface ReviewShape {
  request: Json & {
    operation?: string;
    dryRun?: boolean;
    object?: Json & { metadata?: Json };
    oldObject?: (Json & { metadata?: Json }) | null;
    userInfo?: { username?: string };
  };
}

const keys = (o: unknown): string[] =>
  typeof o === 'object' && o !== null ? Object.keys(o).sort() : [];

/** The parts of a review that must match between a live capture and a committed fixture. */
function shape(review: Json): Record<string, unknown> {
  const r = (review as unknown as ReviewShape).request;
  return {
    review: keys(review),
    request: keys(r),
    operation: r.operation,
    dryRun: r.dryRun,
    object: keys(r.object),
    metadata: keys(r.object?.metadata),
    oldMetadata: keys(r.oldObject?.metadata),
    user: r.userInfo?.username,
  };
}

describe.skipIf(skip !== '')('AdmissionReviews as kube-apiserver sends them', () => {
  let core: k8s.CoreV1Api;
  let apps: k8s.AppsV1Api;
  let podlease: Podlease;
  const cleanUp: (() => Promise<void>)[] = [];
  const saved = new Map<string, CapturedExchange>();

  beforeAll(async () => {
    const kubeconfigPath = inject('kubeconfigPath');
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
    apps = kc.makeApiClient(k8s.AppsV1Api);
    podlease = await startPodlease({
      name: 'capture',
      kubeconfigPath,
      caCertPath: inject('caCertPath'),
      caKeyPath: inject('caKeyPath'),
      redisUrl: inject('e2eRedisUrl'),
      pools: DEV_POOLS_DOCUMENT.pools,
      capture: true,
    });
    cleanUp.push(() => podlease.stop());
    await podlease.register();
    await podlease.createNamespace(NAMESPACE);
  });

  afterAll(async () => {
    for (const stop of cleanUp) await stop();
  });

  /** The first exchange matching `match`, once the proxy has seen it. */
  const exchange = (what: string, match: (e: CapturedExchange) => boolean) =>
    waitUntil(`a captured ${what}`, () => Promise.resolve(podlease.captured().find(match)));

  const request = (e: CapturedExchange): ReviewShape['request'] =>
    (e.review as unknown as ReviewShape).request;
  const answer = (e: CapturedExchange): Json => (e.answer as { response?: Json }).response ?? {};
  const inNamespace = (e: CapturedExchange): boolean => request(e).namespace === NAMESPACE;

  it('records a Deployment pod CREATE (generateName, no name, ReplicaSet owner)', async () => {
    const labels = { app: 'web' };
    await apps.createNamespacedDeployment({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'web', labels },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: { metadata: { labels }, spec: { containers: [CONTAINER] } },
        },
      },
    });
    const e = await exchange('Deployment pod', x => {
      const meta = request(x).object?.metadata as { generateName?: string } | undefined;
      return inNamespace(x) && !request(x).dryRun && (meta?.generateName ?? '').startsWith('web-');
    });
    expect(e.endpoint).toBe('mutate');
    expect(request(e)).toMatchObject({ operation: 'CREATE', dryRun: false });
    expect((request(e).object?.metadata as { name?: string }).name).toBeUndefined();
    expect(answer(e)).toMatchObject({ allowed: true, patchType: 'JSONPatch' });
    saved.set('create-pod-deployment', e);
  });

  it('records a sticky StatefulSet pod CREATE (named, ordinal label)', async () => {
    const labels = { app: 'db' };
    await apps.createNamespacedStatefulSet({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'db', labels },
        spec: {
          replicas: 1,
          serviceName: 'db',
          selector: { matchLabels: labels },
          template: {
            metadata: { labels, annotations: { 'podlease.io/sticky': 'true' } },
            spec: { containers: [CONTAINER] },
          },
        },
      },
    });
    const e = await exchange('StatefulSet pod', x => {
      const meta = request(x).object?.metadata as { name?: string } | undefined;
      return inNamespace(x) && meta?.name === 'db-0';
    });
    const meta = request(e).object?.metadata as {
      labels?: Record<string, string>;
      ownerReferences?: { kind: string }[];
    };
    expect(meta.labels?.['apps.kubernetes.io/pod-index']).toBe('0');
    expect(meta.ownerReferences?.[0]?.kind).toBe('StatefulSet');
    expect(answer(e)).toMatchObject({ allowed: true, patchType: 'JSONPatch' });
    saved.set('create-pod-statefulset', e);
  });

  it('records a server-side dry-run CREATE', async () => {
    await core.createNamespacedPod({
      namespace: NAMESPACE,
      dryRun: 'All',
      body: {
        metadata: { generateName: 'dry-', labels: { app: 'dry' } },
        spec: { containers: [CONTAINER] },
      },
    });
    const e = await exchange('dry run', x => inNamespace(x) && request(x).dryRun === true);
    expect(request(e).operation).toBe('CREATE');
    expect(answer(e)).toEqual({ uid: request(e).uid, allowed: true });
    saved.set('create-pod-dryrun', e);
  });

  it('records an UPDATE that changes podlease.io/ip (denied)', async () => {
    const pod = await waitUntil('the Deployment pod', async () => {
      const list = await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: 'app=web' });
      return list.items[0];
    });
    let caught: unknown;
    try {
      await core.patchNamespacedPod(
        {
          name: pod.metadata?.name ?? '',
          namespace: NAMESPACE,
          body: { metadata: { annotations: { 'podlease.io/ip': '10.244.9.9' } } },
        },
        MERGE_PATCH,
      );
    } catch (err) {
      caught = err;
    }
    expect(apiErrorCode(caught)).toBe(403);
    const e = await exchange('UPDATE', x => inNamespace(x) && x.endpoint === 'validate');
    expect(request(e).operation).toBe('UPDATE');
    expect(answer(e)).toMatchObject({ allowed: false, status: { code: 403 } });
    saved.set('update-pod-owned-change', e);
  });

  it('keeps the committed fixtures in the shape this API server sends', () => {
    expect([...saved.keys()].sort()).toEqual([
      'create-pod-deployment',
      'create-pod-dryrun',
      'create-pod-statefulset',
      'update-pod-owned-change',
    ]);
    if (WRITE) mkdirSync(CAPTURED_DIR, { recursive: true });
    for (const [name, e] of saved) {
      const file = path.join(CAPTURED_DIR, `${name}.json`);
      if (WRITE) writeFileSync(file, JSON.stringify(e.review, null, 2) + '\n');
      expect(existsSync(file), `${file} (run with PODLEASE_CAPTURE_WRITE=1 to make it)`).toBe(true);
      const committed = JSON.parse(readFileSync(file, 'utf8')) as Json;
      expect(shape(committed), name).toEqual(shape(e.review));
    }
  });
});
