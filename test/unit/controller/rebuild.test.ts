import { describe, expect, it } from 'vitest';

import type { PodInfo } from '../../../src/controller/pod-info.js';
import { rebuildPool, RESTORE_CONCURRENCY } from '../../../src/controller/rebuild.js';
import { createLogger } from '../../../src/log/logger.js';
import { MemoryLeaseStore } from '../../../src/pool/memory-store.js';
import { toPoolSet, type Pool } from '../../../src/pool/pools-file.js';

const log = createLogger({ level: 'silent' });
const pool = toPoolSet({
  pools: [{ name: 'p', cidr: '10.9.0.0/24', gateway: '10.9.0.1', default: true }],
}).pools.get('p') as Pool;

const pod = (n: number, ip = `10.9.0.${n + 10}`): PodInfo => ({
  rv: '1',
  uid: `uid-${n}`,
  namespace: 'ns',
  name: `pod-${n}`,
  leases: [{ pool: 'p', id: `01REBUILD${String(n).padStart(17, '0')}`, ip }],
  deleting: false,
});

const podsOf = (list: PodInfo[]): Map<string, PodInfo> => new Map(list.map(p => [p.uid, p]));

describe('rebuildPool', () => {
  it('fills a store with no state at all in one pass, then marks the pool ready', async () => {
    const store = new MemoryLeaseStore();
    const restored: string[] = [];
    const pods = Array.from({ length: RESTORE_CONCURRENCY * 3 + 1 }, (_, i) => pod(i));
    const result = await rebuildPool({
      store,
      pool,
      pods: podsOf(pods),
      log,
      conflict: () => undefined,
      restored: (_id, uid) => restored.push(uid),
    });
    expect(result).toEqual({
      restored: pods.length,
      conflicts: 0,
      present: 0,
      alreadyReady: false,
    });
    expect(await store.epoch(pool)).toBeDefined();
    expect((await store.leases(pool)).every(l => l.state === 'bound')).toBe(true);
    expect(restored.sort()).toEqual(pods.map(p => p.uid).sort());
  });

  it('leaves a ready pool alone', async () => {
    const store = new MemoryLeaseStore();
    await store.ensurePool(pool, { initialize: true });
    const result = await rebuildPool({
      store,
      pool,
      pods: podsOf([pod(1)]),
      log,
      conflict: () => undefined,
    });
    expect(result.alreadyReady).toBe(true);
    expect(await store.leases(pool)).toEqual([]);
  });

  it('reports a second pod on a restored address as a conflict, whatever calls are in flight', async () => {
    const store = new MemoryLeaseStore();
    const conflicts: string[] = [];
    const pods = [pod(1), pod(2), { ...pod(3, '10.9.0.11'), uid: 'uid-dup' }];
    const result = await rebuildPool({
      store,
      pool,
      pods: podsOf(pods),
      log,
      conflict: target => conflicts.push(target.name),
    });
    expect(result).toMatchObject({ restored: 2, conflicts: 1, alreadyReady: false });
    expect(conflicts).toEqual(['pod-3']);
  });
});
