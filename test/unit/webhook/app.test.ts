import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOpsApp, createWebhookApp } from '../../../src/webhook/app.js';
import { createMetrics } from '../../../src/webhook/metrics.js';
import { newLeaseId } from '../../../src/pool/lease-id.js';
import { loadReview } from '../../fixtures/admission/load.js';
import { harness, type Harness } from './helpers.js';

let h: Harness;
let server: Server;
let ops: Server;
let base = '';
let opsBase = '';
let accepting = true;
let namespacesReady = true;

const start = (s: Server): Promise<string> =>
  new Promise(resolve => {
    s.listen(0, '127.0.0.1', () => {
      resolve(`http://127.0.0.1:${(s.address() as AddressInfo).port}`);
    });
  });

beforeAll(async () => {
  h = await harness();
  const metrics = createMetrics({
    store: h.store,
    pools: h.pools,
    statsCacheMs: 1_000,
    statsTimeoutMs: 500,
  });
  server = createServer(createWebhookApp({ ...h.deps, metrics }));
  ops = createServer(
    createOpsApp({
      store: h.store,
      metrics,
      pingTimeoutMs: 500,
      accepting: () => accepting,
      namespacesReady: () => namespacesReady,
      log: h.deps.log,
    }),
  );
  base = await start(server);
  opsBase = await start(ops);
});

afterAll(async () => {
  await new Promise(r => server.close(r));
  await new Promise(r => ops.close(r));
});

const post = (path: string, body: string, type = 'application/json'): Promise<Response> =>
  fetch(`${base}${path}?timeout=10s`, { method: 'POST', body, headers: { 'content-type': type } });

describe('webhook app (HTTP layer)', () => {
  it('answers an AdmissionReview with an AdmissionReview', async () => {
    const res = await post('/mutate', JSON.stringify(loadReview('create-pod-deployment')));
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      kind: string;
      response: { uid: string; allowed: boolean };
    };
    expect(body.kind).toBe('AdmissionReview');
    expect(body.response).toMatchObject({
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      allowed: true,
    });
  });

  it('answers HTTP 400 with a JSON error for a body that is not an AdmissionReview', async () => {
    for (const body of ['{"kind":"Pod"}', 'not json', '[]']) {
      const res = await post('/mutate', body);
      expect(res.status).toBe(400);
      const err = (await res.json()) as { error: string; message: string };
      expect(err.error).toBe('BadRequest');
      expect(err.message).toMatch(/^podlease: /);
    }
  });

  it('says an empty body is empty (not "kind undefined, apiVersion undefined")', async () => {
    for (const type of ['application/json', 'text/plain']) {
      const res = await post('/mutate', '', type);
      expect(res.status).toBe(400);
      const err = (await res.json()) as { error: string; message: string };
      expect(err).toEqual({
        error: 'BadRequest',
        message: 'podlease: the body is empty; POST an AdmissionReview (a JSON object)',
      });
    }
  });

  it('answers 413 over the body limit', async () => {
    const review = loadReview('create-pod-deployment');
    review.request.object!.metadata.annotations = { big: 'x'.repeat(100_000) };
    const res = await post('/validate', JSON.stringify(review));
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: string }).error).toBe('RequestEntityTooLarge');
  });

  it('answers 404 elsewhere', async () => {
    expect((await fetch(`${base}/`)).status).toBe(404);
  });
});

describe('ops app', () => {
  it('serves healthz, readyz and metrics with pool gauges', async () => {
    expect((await fetch(`${opsBase}/healthz`)).status).toBe(200);
    expect((await fetch(`${opsBase}/readyz`)).status).toBe(200);
    const text = await (await fetch(`${opsBase}/metrics`)).text();
    expect(text).toMatch(
      /podlease_admissions_total\{endpoint="mutate",outcome="allowed",pool="default",code="200"\} 1/,
    );
    expect(text).toMatch(/podlease_pool_size\{pool="small"\} 13/);
    expect(text).toMatch(/podlease_pool_leased\{pool="default"\} 1/);
    expect(text).toMatch(/podlease_pool_free\{pool="default"\} 65532/);
    expect(text).toMatch(/podlease_admission_duration_seconds_bucket/);
  });

  it('is not ready while not accepting', async () => {
    accepting = false;
    expect((await fetch(`${opsBase}/readyz`)).status).toBe(503);
    accepting = true;
  });

  it('is not ready until the namespace cache has synced', async () => {
    namespacesReady = false;
    const res = await fetch(`${opsBase}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('not ready: the namespace cache has not synced yet\n');
    namespacesReady = true;
    expect((await fetch(`${opsBase}/readyz`)).status).toBe(200);
  });
});

describe('pool gauges', () => {
  it('count addresses resting for --reuse-cooldown as cooling, not free', async () => {
    const g = await harness();
    const small = g.pools.pools.get('small')!;
    const metrics = createMetrics({
      store: g.store,
      pools: g.pools,
      statsCacheMs: 0,
      statsTimeoutMs: 500,
      reuseCooldownMs: 60_000,
    });
    const a = await g.store.allocate({
      pool: small,
      leaseId: newLeaseId(),
      pod: { namespace: 'default', name: 'x' },
      ttlMs: 60_000,
    });
    await g.store.release(small, a.lease.id);
    const text = await metrics.registry.metrics();
    expect(text).toContain('podlease_pool_cooling{pool="small"} 1');
    expect(text).toContain('podlease_pool_free{pool="small"} 12');
    expect(text).toContain('podlease_pool_cooling{pool="default"} 0');
  });
});
