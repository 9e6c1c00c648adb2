import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';

import { Controller, type ControllerOptions } from '../../../src/controller/controller.js';
import { createControllerMetrics } from '../../../src/controller/metrics.js';
import { kubeEvents } from '../../../src/k8s/events.js';
import { LeaderElector } from '../../../src/k8s/leader.js';
import { createLogger } from '../../../src/log/logger.js';
import { MemoryLeaseStore } from '../../../src/pool/memory-store.js';
import { parseReport } from '../../../src/pool/report.js';
import { toPoolSet, type Pool } from '../../../src/pool/pools-file.js';
import { FakeApi, type FakePod } from './fake-api.js';

const log = createLogger({ level: 'silent' });
const pools = toPoolSet({
  pools: [{ name: 'p', cidr: '10.9.0.0/24', gateway: '10.9.0.1', default: true }],
});
const pool = pools.pools.get('p') as Pool;

const OPTIONS: ControllerOptions = {
  reconcileIntervalMs: 60_000,
  rebuildSettleMs: 0,
  expiryIntervalMs: 20,
  epochCheckMs: 20,
  workers: 4,
};

const until = async <T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  ms = 5_000,
): Promise<T> => {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(r => setTimeout(r, 10));
  }
};

interface Harness {
  api: FakeApi;
  store: MemoryLeaseStore;
  controller: Controller;
  registry: Registry;
}

const running: Controller[] = [];
afterEach(async () => {
  for (const c of running.splice(0)) await c.stop();
});

const start = async (
  opts: {
    init?: boolean;
    api?: FakeApi;
    store?: MemoryLeaseStore;
    options?: Partial<ControllerOptions>;
  } = {},
): Promise<Harness> => {
  const api = opts.api ?? new FakeApi();
  const store = opts.store ?? new MemoryLeaseStore();
  if (opts.init !== false) await store.ensurePool(pool, { initialize: true });
  const registry = new Registry();
  const client = api.client();
  const controller = new Controller({
    store,
    pools,
    client,
    log,
    metrics: createControllerMetrics(registry),
    events: kubeEvents(client, log, 'test'),
    options: { ...OPTIONS, ...opts.options },
  });
  running.push(controller);
  controller.start();
  controller.setLeader(true);
  await until('caches synced', () => controller.synced() || undefined);
  return { api, store, controller, registry };
};

/** A pending lease made by the webhook, and the pod the API server then created with it. */
const admit = async (
  h: Harness,
  pod: Omit<FakePod, 'annotations'> & { annotations?: Record<string, string> },
  extra: { stickyKey?: string; ttlMs?: number } = {},
): Promise<{ id: string; ip: string }> => {
  const id = `L${pod.uid.toUpperCase().padEnd(25, '0')}`.slice(0, 26);
  const a = await h.store.allocate({
    pool,
    leaseId: id,
    pod: { namespace: pod.namespace, name: pod.name },
    ttlMs: extra.ttlMs ?? 60_000,
    stickyKey: extra.stickyKey,
  });
  h.api.upsertPod({
    ...pod,
    annotations: {
      ...pod.annotations,
      'podlease.io/ip': a.lease.ip,
      'podlease.io/lease': `p/${id}`,
    },
  });
  return { id, ip: a.lease.ip };
};

const stsPod = (sts: string, ordinal: number, stsUid: string): FakePod => ({
  uid: `${sts}-${ordinal}-uid-${Math.random().toString(36).slice(2, 8)}`,
  namespace: 'ns',
  name: `${sts}-${ordinal}`,
  annotations: { 'podlease.io/sticky': 'true' },
  labels: { 'apps.kubernetes.io/pod-index': String(ordinal) },
  ownerReferences: [
    { apiVersion: 'apps/v1', kind: 'StatefulSet', name: sts, uid: stsUid, controller: true },
  ],
});

/** A store whose pool holds one lease bound to a pod (uid) that the API server may not have. */
const boundStore = async (id: string, name: string, uid: string): Promise<MemoryLeaseStore> => {
  const store = new MemoryLeaseStore();
  await store.ensurePool(pool, { initialize: true });
  await store.allocate({ pool, leaseId: id, pod: { namespace: 'ns', name }, ttlMs: 60_000 });
  await store.bind(pool, id, { namespace: 'ns', name, uid });
  return store;
};

describe('Controller', () => {
  it('binds a pending lease when its pod appears, and releases it when the pod is deleted', async () => {
    const h = await start();
    const { id, ip } = await admit(h, { uid: 'u1', namespace: 'ns', name: 'a' });
    const rec = await until('bound', async () => {
      const r = await h.store.get(pool, id);
      return r?.state === 'bound' ? r : undefined;
    });
    expect(rec).toMatchObject({ uid: 'u1', name: 'a', namespace: 'ns', ip });
    h.api.deletePod('u1');
    await until('released', async () =>
      (await h.store.get(pool, id)) === undefined ? true : undefined,
    );
    expect((await h.store.stats(pool)).leased).toBe(0);
    expect(await h.registry.getSingleMetricAsString('podlease_leases_released_total')).toContain(
      'reason="deleted"',
    );
  });

  it('releases a Succeeded pod’s lease while the pod object remains', async () => {
    const h = await start();
    const { id } = await admit(h, { uid: 'u2', namespace: 'ns', name: 'job' });
    await until('bound', async () =>
      (await h.store.get(pool, id))?.state === 'bound' ? true : undefined,
    );
    const pod = h.api.pods.get('u2');
    h.api.upsertPod({ ...(pod as FakePod), phase: 'Succeeded' });
    await until('released', async () =>
      (await h.store.get(pool, id)) === undefined ? true : undefined,
    );
    expect(h.api.pods.has('u2')).toBe(true);
  });

  it('keeps a sticky pod’s reservation when the pod is deleted, and gives the address to its successor', async () => {
    const h = await start();
    h.api.upsertStatefulSet({ uid: 'sts1', namespace: 'ns', name: 'web', replicas: 2 });
    const first = stsPod('web', 0, 'sts1');
    const { id, ip } = await admit(h, first, { stickyKey: 'ns/web/0' });
    await until('bound', async () =>
      (await h.store.get(pool, id))?.state === 'bound' ? true : undefined,
    );
    h.api.deletePod(first.uid);
    await until('released', async () =>
      (await h.store.get(pool, id)) === undefined ? true : undefined,
    );
    const reservations = await h.store.reservations(pool);
    expect(reservations).toEqual([expect.objectContaining({ key: 'ns/web/0', ip })]);
    const again = await admit(h, stsPod('web', 0, 'sts1'), { stickyKey: 'ns/web/0' });
    expect(again.ip).toBe(ip);
  });

  it('drops reservations of ordinals a StatefulSet scaled below under when-scaled: Delete, keeps them under Retain', async () => {
    const h = await start();
    h.api.upsertStatefulSet({
      uid: 's-del',
      namespace: 'ns',
      name: 'del',
      replicas: 3,
      annotations: { 'podlease.io/when-scaled': 'Delete' },
    });
    h.api.upsertStatefulSet({ uid: 's-ret', namespace: 'ns', name: 'ret', replicas: 3 });
    const pods: FakePod[] = [];
    for (const sts of ['del', 'ret']) {
      for (let i = 0; i < 3; i++) {
        const p = stsPod(sts, i, `s-${sts}`);
        pods.push(p);
        await admit(h, p, { stickyKey: `ns/${sts}/${i}` });
      }
    }
    await until('all bound', async () =>
      (await h.store.stats(pool)).bound === 6 ? true : undefined,
    );
    h.api.upsertStatefulSet({
      uid: 's-del',
      namespace: 'ns',
      name: 'del',
      replicas: 1,
      annotations: { 'podlease.io/when-scaled': 'Delete' },
    });
    h.api.upsertStatefulSet({ uid: 's-ret', namespace: 'ns', name: 'ret', replicas: 1 });
    for (const p of pods) if (!p.name.endsWith('-0')) h.api.deletePod(p.uid);
    await until('del/1 and del/2 dropped', async () => {
      const keys = (await h.store.reservations(pool)).map(r => r.key).sort();
      return keys.join(',') === 'ns/del/0,ns/ret/0,ns/ret/1,ns/ret/2' ? true : undefined;
    });
    expect((await h.store.stats(pool)).leased).toBe(4);
  });

  it('applies when-deleted when a StatefulSet and its pods are gone: Delete frees, Retain keeps', async () => {
    const h = await start();
    h.api.upsertStatefulSet({ uid: 's-a', namespace: 'ns', name: 'gone', replicas: 1 });
    h.api.upsertStatefulSet({
      uid: 's-b',
      namespace: 'ns',
      name: 'kept',
      replicas: 1,
      annotations: { 'podlease.io/when-deleted': 'Retain' },
    });
    const a = stsPod('gone', 0, 's-a');
    const b = stsPod('kept', 0, 's-b');
    await admit(h, a, { stickyKey: 'ns/gone/0' });
    const kept = await admit(h, b, { stickyKey: 'ns/kept/0' });
    await until('bound', async () => ((await h.store.stats(pool)).bound === 2 ? true : undefined));
    h.api.deleteStatefulSet('s-a');
    h.api.deleteStatefulSet('s-b');
    h.api.deletePod(a.uid);
    h.api.deletePod(b.uid);
    await until('gone/0 dropped', async () => {
      const r = await h.store.reservations(pool);
      return r.length === 1 ? r : undefined;
    });
    expect(await h.store.reservations(pool)).toEqual([
      expect.objectContaining({ key: 'ns/kept/0', ip: kept.ip }),
    ]);
  });

  it('expires a pending lease no pod carries, after a fresh read, and keeps one a pod the cache missed carries', async () => {
    const h = await start();
    const orphan = await h.store.allocate({
      pool,
      leaseId: '01ORPHAN00000000000000000A',
      pod: { namespace: 'ns', generateName: 'x-' },
      ttlMs: 1,
    });
    // A pod the watch never reported (created through a path the cache has not caught up with).
    const hidden = await h.store.allocate({
      pool,
      leaseId: '01HIDDEN00000000000000000A',
      pod: { namespace: 'ns', name: 'hidden' },
      ttlMs: 1,
    });
    h.api.pods.set('uh', {
      uid: 'uh',
      namespace: 'ns',
      name: 'hidden',
      rv: '1',
      annotations: {
        'podlease.io/ip': hidden.lease.ip,
        'podlease.io/lease': `p/${hidden.lease.id}`,
      },
    });
    await until('orphan expired', async () =>
      (await h.store.get(pool, orphan.lease.id)) === undefined ? true : undefined,
    );
    expect(await h.store.get(pool, hidden.lease.id)).toBeDefined();
    expect(h.api.requests.some(r => r.startsWith('GET /api/v1/namespaces/ns/pods?'))).toBe(true);
  });

  it('reconcile releases a bound lease whose pod is gone (deleted while no controller ran), after a GET confirms it', async () => {
    const a = { lease: { id: '01QVIET000000000000000000A' } };
    const store = await boundStore(a.lease.id, 'quiet', 'u3');
    const ip = (await store.get(pool, a.lease.id))?.ip;
    // Another pod of the same name now: the lease's pod (uid u3) is still gone.
    const api = new FakeApi();
    api.upsertPod({ uid: 'u3-successor', namespace: 'ns', name: 'quiet' });
    const h = await start({ api, store, init: false });
    await until('leak released', async () =>
      (await h.store.get(pool, a.lease.id)) === undefined ? true : undefined,
    );
    expect(h.api.requests).toContain('GET /api/v1/namespaces/ns/pods/quiet');
    expect(await h.registry.getSingleMetricAsString('podlease_leases_leaked_total')).toMatch(
      / 1$/m,
    );
    // The findings are kept in the store, for every replica's pool map.
    const report = await until('report saved', async () => parseReport(await store.report(pool)));
    expect(report).toMatchObject({ total: 1, counts: { leaked: 1 } });
    expect(report.findings[0]).toMatchObject({
      kind: 'leaked',
      ip,
      leaseId: a.lease.id,
    });
  });

  it('does not release a bound lease when the GET finds its pod after all', async () => {
    const a = { lease: { id: '01HERE0000000000000000000A' } };
    const store = await boundStore(a.lease.id, 'here', 'u4');
    const api = new FakeApi();
    const h = await start({ api, store, init: false, options: { reconcileIntervalMs: 30 } });
    // The pod exists, but the watch never told of it: the reconcile's fresh list finds it.
    api.pods.set('u4', { uid: 'u4', namespace: 'ns', name: 'here', rv: '1' });
    const first = h.controller.lastReport?.at ?? 0;
    await until('two more reconciles', () =>
      (h.controller.lastReport?.at ?? 0) > first + 40 ? true : undefined,
    );
    expect((await h.store.get(pool, a.lease.id))?.state).toBe('bound');
  });

  it('reports two pods carrying one lease id as a conflict on both, and moves nothing', async () => {
    const h = await start();
    const { id, ip } = await admit(h, { uid: 'first', namespace: 'ns', name: 'one' });
    await until('bound', async () =>
      (await h.store.get(pool, id))?.state === 'bound' ? true : undefined,
    );
    h.api.upsertPod({
      uid: 'second',
      namespace: 'ns',
      name: 'two',
      annotations: { 'podlease.io/ip': ip, 'podlease.io/lease': `p/${id}` },
    });
    await until('events', () => (h.api.events.length >= 2 ? true : undefined));
    expect(h.api.events.map(e => e.pod).sort()).toEqual(['ns/one', 'ns/two']);
    expect(h.api.events[0]?.message).toContain(`lease p/${id} is bound to pod ns/one`);
    expect(await h.store.get(pool, id)).toMatchObject({ uid: 'first' });
  });

  it('rebuilds a pool without epoch from the pods’ annotations before anything else, then marks it ready', async () => {
    const api = new FakeApi();
    const sticky = stsPod('db', 0, 'sdb');
    api.upsertStatefulSet({ uid: 'sdb', namespace: 'ns', name: 'db', replicas: 1 });
    api.upsertPod({
      ...sticky,
      annotations: {
        ...sticky.annotations,
        'podlease.io/ip': '10.9.0.77',
        'podlease.io/lease': 'p/01REBUILD0000000000000000A',
      },
    });
    api.upsertPod({
      uid: 'plain',
      namespace: 'ns',
      name: 'plain',
      annotations: {
        'podlease.io/ip': '10.9.0.5',
        'podlease.io/lease': 'p/01REBUILD0000000000000000B',
      },
    });
    // A finished pod's address is not restored.
    api.upsertPod({
      uid: 'done',
      namespace: 'ns',
      name: 'done',
      phase: 'Failed',
      annotations: {
        'podlease.io/ip': '10.9.0.6',
        'podlease.io/lease': 'p/01REBUILD0000000000000000C',
      },
    });
    const store = new MemoryLeaseStore();
    expect(await store.ensurePool(pool, { initialize: false })).toBe('uninitialised');
    await start({ api, store, init: false });
    await until('ready', async () => ((await store.epoch(pool)) !== undefined ? true : undefined));
    const leases = (await store.leases(pool)).map(l => [l.ip, l.state, l.uid]).sort();
    expect(leases).toEqual([
      ['10.9.0.5', 'bound', 'plain'],
      ['10.9.0.77', 'bound', sticky.uid],
    ]);
    expect(await store.reservations(pool)).toEqual([
      expect.objectContaining({ key: 'ns/db/0', ip: '10.9.0.77' }),
    ]);
    // Allocation after the rebuild never hands out a held address.
    const taken = new Set(['10.9.0.5', '10.9.0.77']);
    for (let i = 0; i < 20; i++) {
      const a = await store.allocate({
        pool,
        leaseId: `01NEW${String(i).padStart(21, '0')}`,
        pod: { namespace: 'ns', generateName: 'n-' },
        ttlMs: 60_000,
      });
      expect(taken.has(a.lease.ip)).toBe(false);
      taken.add(a.lease.ip);
    }
  });

  it('rebuilds a restarted (empty) memory store from the pods before it is ready', async () => {
    const h = await start();
    const { id, ip } = await admit(h, { uid: 'w1', namespace: 'ns', name: 'w' });
    await until('bound', async () =>
      (await h.store.get(pool, id))?.state === 'bound' ? true : undefined,
    );
    await h.store.close();
    // A "wiped" memory store: a new one, as after a restart.
    const fresh = new MemoryLeaseStore();
    await fresh.ensurePool(pool, { initialize: false });
    const api = h.api;
    await h.controller.stop();
    await start({ api, store: fresh, init: false });
    await until('rebuilt', async () => {
      const r = await fresh.get(pool, id).catch(() => undefined);
      return r?.state === 'bound' ? true : undefined;
    });
    expect((await fresh.get(pool, id))?.ip).toBe(ip);
  });

  it('does nothing while not the leader', async () => {
    const api = new FakeApi();
    const store = new MemoryLeaseStore();
    await store.ensurePool(pool, { initialize: true });
    const client = api.client();
    const controller = new Controller({
      store,
      pools,
      client,
      log,
      metrics: createControllerMetrics(new Registry()),
      events: kubeEvents(client, log, 't'),
      options: OPTIONS,
    });
    running.push(controller);
    controller.start();
    await until('synced', () => controller.synced() || undefined);
    const a = await store.allocate({
      pool,
      leaseId: '01FOLLOWER000000000000000A',
      pod: { namespace: 'ns', name: 'f' },
      ttlMs: 60_000,
    });
    api.upsertPod({
      uid: 'f',
      namespace: 'ns',
      name: 'f',
      annotations: { 'podlease.io/ip': a.lease.ip, 'podlease.io/lease': `p/${a.lease.id}` },
    });
    api.deletePod('f');
    await new Promise(r => setTimeout(r, 100));
    expect((await store.get(pool, a.lease.id))?.state).toBe('pending');
    // Leading later: the deletion it saw as a follower is acted on.
    controller.setLeader(true);
    await until('released', async () =>
      (await store.get(pool, a.lease.id)) === undefined ? true : undefined,
    );
  });
});

describe('LeaderElector', () => {
  it('lets one candidate lead; the other takes over when the first gives the Lease up', async () => {
    const api = new FakeApi();
    const client = api.client();
    const state = { a: false, b: false };
    const make = (name: 'a' | 'b'): LeaderElector =>
      new LeaderElector({
        client,
        namespace: 'podlease',
        name: 'ctl',
        identity: name,
        leaseDurationMs: 1_500,
        log,
        onChange: l => {
          state[name] = l;
        },
      });
    const a = make('a');
    a.start();
    await until('a leads', () => state.a || undefined);
    const b = make('b');
    b.start();
    await new Promise(r => setTimeout(r, 500));
    expect(state).toEqual({ a: true, b: false });
    await a.stop();
    await until('b leads', () => state.b || undefined, 3_000);
    expect(state.a).toBe(false);
    await b.stop();
  });

  it('takes over a Lease whose holder stopped renewing, after the lease duration', async () => {
    const api = new FakeApi();
    const client = api.client();
    let bLeads = false;
    api.leases.set('podlease/ctl', {
      metadata: { name: 'ctl', namespace: 'podlease', resourceVersion: '1' },
      spec: {
        holderIdentity: 'dead',
        leaseDurationSeconds: 1,
        renewTime: new Date().toISOString(),
      },
    });
    const b = new LeaderElector({
      client,
      namespace: 'podlease',
      name: 'ctl',
      identity: 'b',
      leaseDurationMs: 1_000,
      log,
      onChange: l => {
        bLeads = l;
      },
    });
    const started = Date.now();
    b.start();
    await until('b leads', () => bLeads || undefined, 4_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    await b.stop();
  });
});
