/**
 * Two controllers that both believe they lead (a stale leader finishing its term while the new
 * one starts), on one store and one API server, under a seeded churn of admissions, deletions,
 * finished pods and StatefulSet pods recreated on their ordinal. After every burst, once both
 * have settled: every live pod's lease is in the store on its address, bound to its UID; no two
 * live pods share an address; no lease is left whose pod is gone.
 */
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';

import { Controller } from '../../../src/controller/controller.js';
import { createControllerMetrics } from '../../../src/controller/metrics.js';
import { NO_EVENTS } from '../../../src/k8s/events.js';
import { createLogger } from '../../../src/log/logger.js';
import { MemoryLeaseStore } from '../../../src/pool/memory-store.js';
import { toPoolSet, type Pool } from '../../../src/pool/pools-file.js';
import { rng } from '../../helpers/rng.js';
import { FakeApi } from './fake-api.js';

const log = createLogger({ level: 'silent' });
const pools = toPoolSet({ pools: [{ name: 'p', cidr: '10.8.0.0/27', default: true }] });
const pool = pools.pools.get('p') as Pool;

const controllers: Controller[] = [];
afterEach(async () => {
  for (const c of controllers.splice(0)) await c.stop();
});

const settle = async (check: () => Promise<string | undefined>, ms = 5_000): Promise<void> => {
  const deadline = Date.now() + ms;
  let last: string | undefined;
  for (;;) {
    last = await check();
    if (last === undefined) return;
    if (Date.now() > deadline) throw new Error(last);
    await new Promise(r => setTimeout(r, 20));
  }
};

const invariants = async (api: FakeApi, store: MemoryLeaseStore): Promise<string | undefined> => {
  const leases = new Map((await store.leases(pool)).map(l => [l.id, l]));
  const byIp = new Map<string, string>();
  const carried = new Set<string>();
  for (const p of api.pods.values()) {
    const finished = p.phase === 'Succeeded' || p.phase === 'Failed';
    const [ip, entry] = [
      p.annotations?.['podlease.io/ip'] ?? '',
      p.annotations?.['podlease.io/lease'] ?? '',
    ];
    const id = entry.split('/')[1] ?? '';
    if (finished) continue;
    carried.add(id);
    const other = byIp.get(ip);
    if (other !== undefined) return `pods ${other} and ${p.name} both hold ${ip}`;
    byIp.set(ip, p.name);
    const lease = leases.get(id);
    if (lease === undefined) return `live pod ${p.name} lost its lease ${id}`;
    if (lease.ip !== ip) return `pod ${p.name}'s lease is on ${lease.ip}, the pod says ${ip}`;
    if (lease.state !== 'bound' || lease.uid !== p.uid)
      return `pod ${p.name}'s lease is ${lease.state} to ${lease.uid ?? '-'}`;
  }
  for (const l of leases.values())
    if (!carried.has(l.id)) return `lease ${l.id} (${l.ip}) left behind`;
  return undefined;
};

/** What must hold at every instant: each live pod's lease exists on its address. */
const strictNow = async (api: FakeApi, store: MemoryLeaseStore): Promise<string | undefined> => {
  const leases = new Map((await store.leases(pool)).map(l => [l.id, l]));
  const byIp = new Map<string, string>();
  for (const p of api.pods.values()) {
    if (p.phase === 'Succeeded' || p.phase === 'Failed') continue;
    const ip = p.annotations?.['podlease.io/ip'] ?? '';
    const id = (p.annotations?.['podlease.io/lease'] ?? '').split('/')[1] ?? '';
    const other = byIp.get(ip);
    if (other !== undefined) return `pods ${other} and ${p.name} both hold ${ip}`;
    byIp.set(ip, p.name);
    if (leases.get(id)?.ip !== ip) return `live pod ${p.name} has no lease on ${ip} in the store`;
  }
  return undefined;
};

interface World {
  readonly api: FakeApi;
  readonly store: MemoryLeaseStore;
  readonly random: () => number;
  readonly seed: number;
  readonly counter: { n: number };
}

/** An admission, then (usually) the pod the API server creates with it. */
const admit = async (w: World): Promise<void> => {
  const live = [...w.api.pods.values()];
  const ordinal = Math.floor(w.random() * 4);
  const sticky = w.random() < 0.4 && !live.some(p => p.name === `db-${ordinal}`);
  const name = sticky ? `db-${ordinal}` : `pod-${w.counter.n}`;
  const uid = `uid-${w.counter.n++}`;
  let a;
  try {
    a = await w.store.allocate({
      pool,
      leaseId: `01SB${String(w.seed).padStart(6, '0')}${String(w.counter.n).padStart(16, '0')}`,
      pod: { namespace: 'ns', name },
      ttlMs: 10,
      stickyKey: sticky ? `ns/db/${ordinal}` : undefined,
    });
  } catch {
    return; // exhausted, or the address is still held: denied, nothing changes
  }
  // Some pods never reach the API server (rejected after mutation).
  if (w.random() < 0.1) return;
  const owner = {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    name: 'db',
    uid: 'sts',
    controller: true,
  };
  w.api.upsertPod({
    uid,
    namespace: 'ns',
    name,
    annotations: {
      'podlease.io/ip': a.lease.ip,
      'podlease.io/lease': `p/${a.lease.id}`,
      ...(sticky ? { 'podlease.io/sticky': 'true' } : {}),
    },
    labels: sticky ? { 'apps.kubernetes.io/pod-index': String(ordinal) } : {},
    ownerReferences: sticky ? [owner] : [],
  });
};

const step = async (w: World): Promise<void> => {
  const live = [...w.api.pods.values()];
  const r = w.random();
  const victim = live[Math.floor(w.random() * live.length)];
  if (r < 0.45 || victim === undefined) {
    await admit(w);
  } else if (r < 0.8) {
    w.api.deletePod(victim.uid);
  } else if (r < 0.9) {
    w.api.upsertPod({ ...victim, phase: 'Succeeded' });
  } else {
    // A watch gap: the deletion is missed, a relist catches up.
    w.api.deletePodSilently(victim.uid);
    w.api.endWatches();
  }
};

const run = async (seed: number): Promise<void> => {
  const random = rng(seed);
  const api = new FakeApi();
  const store = new MemoryLeaseStore();
  await store.ensurePool(pool, { initialize: true });
  for (let i = 0; i < 2; i++) {
    const client = api.client();
    const c = new Controller({
      store,
      pools,
      client,
      log,
      metrics: createControllerMetrics(new Registry()),
      events: NO_EVENTS,
      options: {
        reconcileIntervalMs: 40,
        rebuildSettleMs: 0,
        expiryIntervalMs: 15,
        epochCheckMs: 15,
        workers: 3,
      },
    });
    controllers.push(c);
    c.start();
    c.setLeader(true);
  }
  api.upsertStatefulSet({ uid: 'sts', namespace: 'ns', name: 'db', replicas: 4 });
  const counter = { n: 0 };
  for (let burst = 0; burst < 6; burst++) {
    for (let op = 0; op < 25; op++) {
      await step({ api, store, random, seed, counter });
      if (random() < 0.3) await new Promise(r => setTimeout(r, 1));
      // At every step, not only once settled: a live pod never loses its lease, and two live
      // pods never share an address (a restore after a wrong release would come too late).
      const broken = await strictNow(api, store);
      if (broken !== undefined)
        throw new Error(`seed ${seed}, burst ${burst}, op ${op}: ${broken}`);
    }
    await settle(() => invariants(api, store));
  }
  const stats = await store.stats(pool);
  const live = [...api.pods.values()].filter(p => p.phase !== 'Succeeded').length;
  expect(
    stats.leased -
      stats.reserved +
      [...(await store.reservations(pool))].filter(r => r.leaseId !== undefined).length,
  ).toBe(live);
};

describe('two controllers leading at once (split brain)', () => {
  it.each([1, 2, 3, 4, 5])(
    'seed %i: no address on two live pods, no live pod without its lease, nothing left behind',
    async seed => {
      await run(seed);
    },
  );
});
