/**
 * The store came back on another history (docs/design.md §10): the controller, and `podlease
 * check --fix`, restore what the pods carry and only then confirm the new history, compare-and-
 * set on the history read before the pods were listed.
 */
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { checkCluster } from '../../../src/controller/check.js';
import { Controller } from '../../../src/controller/controller.js';
import { createControllerMetrics } from '../../../src/controller/metrics.js';
import { kubeEvents } from '../../../src/k8s/events.js';
import { createLogger } from '../../../src/log/logger.js';
import { MemoryLeaseStore } from '../../../src/pool/memory-store.js';
import { toPoolSet, type Pool } from '../../../src/pool/pools-file.js';
import type { RestoreRequest, StoreHistory } from '../../../src/pool/store.js';
import { FakeApi } from './fake-api.js';

const log = createLogger({ level: 'silent' });
const pools = toPoolSet({ pools: [{ name: 'p', cidr: '10.9.0.0/24', default: true }] });
const pool = pools.pools.get('p') as Pool;

/** A memory store whose history the test moves, as a Redis failover would. */
class MovingHistory extends MemoryLeaseStore {
  current = 'h1';
  reconciledOn = 'h1';
  readonly log: string[] = [];
  /** Called on each restore (e.g. to fail over again in the middle of a reconcile). */
  onRestore: () => void = () => undefined;

  override async history(p: Pool): Promise<StoreHistory> {
    await super.history(p);
    return { current: this.current, reconciledOn: this.reconciledOn };
  }

  override async markReconciled(p: Pool, history: string): Promise<boolean> {
    await super.history(p);
    if (history !== this.current) {
      this.log.push(`refused ${history}`);
      return false;
    }
    this.reconciledOn = history;
    this.log.push(`confirmed ${history}`);
    return true;
  }

  override async restore(req: RestoreRequest): ReturnType<MemoryLeaseStore['restore']> {
    this.log.push(`restored ${req.leaseId}`);
    this.onRestore();
    return super.restore(req);
  }
}

const running: Controller[] = [];
afterEach(async () => {
  for (const c of running.splice(0)) await c.stop();
});

const until = async (what: string, check: () => boolean, ms = 5_000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(r => setTimeout(r, 10));
  }
};

/** A running pod carrying a lease the store lost (it was acknowledged by the old history). */
const lostLease = (api: FakeApi, n: number): string => {
  const id = `01LOST${String(n).padStart(20, '0')}`;
  api.upsertPod({
    uid: `uid-${n}`,
    namespace: 'ns',
    name: `pod-${n}`,
    annotations: { 'podlease.io/ip': `10.9.0.${100 + n}`, 'podlease.io/lease': `p/${id}` },
  });
  return id;
};

const start = async (store: MovingHistory, api: FakeApi): Promise<Controller> => {
  const client = api.client();
  const controller = new Controller({
    store,
    pools,
    client,
    log,
    metrics: createControllerMetrics(new Registry()),
    events: kubeEvents(client, log, 'test'),
    options: {
      reconcileIntervalMs: 600_000,
      rebuildSettleMs: 0,
      expiryIntervalMs: 600_000,
      epochCheckMs: 20,
      workers: 2,
    },
  });
  running.push(controller);
  controller.start();
  controller.setLeader(true);
  await until('caches synced', () => controller.synced());
  return controller;
};

describe('a store on another history', () => {
  it('the controller restores what the pods carry, then confirms the new history', async () => {
    const store = new MovingHistory();
    await store.ensurePool(pool, { initialize: true });
    const api = new FakeApi();
    await start(store, api);
    await new Promise(r => setTimeout(r, 100));
    expect(store.log).toEqual([]);
    const id = lostLease(api, 1);
    store.current = 'h2';
    await until('the new history confirmed', () => store.reconciledOn === 'h2');
    expect(store.log).toEqual([`restored ${id}`, 'confirmed h2']);
    expect((await store.get(pool, id))?.ip).toBe('10.9.0.101');
  });

  it('a second failover during the reconcile is not confirmed; the next pass confirms it', async () => {
    const store = new MovingHistory();
    await store.ensurePool(pool, { initialize: true });
    const api = new FakeApi();
    await start(store, api);
    const id = lostLease(api, 2);
    store.onRestore = () => {
      store.current = 'h3';
      store.onRestore = () => undefined;
    };
    store.current = 'h2';
    await until('the newest history confirmed', () => store.reconciledOn === 'h3');
    expect(store.log).toEqual([`restored ${id}`, 'refused h2', 'confirmed h3']);
  });

  it('`podlease check` reports it; `check --fix` restores and confirms', async () => {
    const store = new MovingHistory();
    await store.ensurePool(pool, { initialize: true });
    const api = new FakeApi();
    const id = lostLease(api, 3);
    store.current = 'h2';
    const o = { store, pools, client: api.client(), log };
    const report = await checkCluster({ ...o, fix: false });
    expect(report.reconciling).toEqual(['p']);
    expect(report.findings.map(f => f.kind)).toEqual(['missing']);
    expect(store.log).toEqual([]);
    const fixed = await checkCluster({ ...o, fix: true });
    expect(fixed.reconciling).toEqual([]);
    expect(fixed.problems).toBe(0);
    expect(store.log).toEqual([`restored ${id}`, 'confirmed h2']);
  });
});
