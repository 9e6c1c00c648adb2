/**
 * Many connections, one pool: 16 store instances (16 connections) allocate 20,000 addresses of a
 * /16 concurrently, then release and re-allocate under contention. Zero duplicates, and the
 * counters the scripts maintain agree with the data.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { newLeaseId } from '../../../src/pool/lease-id.js';
import { RedisLeaseStore } from '../../../src/pool/redis-store.js';
import type { Allocation } from '../../../src/pool/store.js';
import { testPool } from '../../helpers/pools.js';

/** replacePendingBefore for a takeover whatever the pending lease's age. */
const ANY_AGE = Number.MAX_SAFE_INTEGER;

const skip = inject('redisSkip');
const CONNECTIONS = 16;
const ALLOCATIONS = 20_000;
const IN_FLIGHT_PER_CONNECTION = 32;

describe.skipIf(skip !== '')(
  `concurrent allocation on Redis${skip === '' ? '' : ` (skipped: ${skip})`}`,
  () => {
    const pool = testPool({ cidr: '10.77.0.0/16', gateway: '10.77.0.1' });
    let stores: RedisLeaseStore[] = [];

    beforeAll(async () => {
      const url = inject('redisUrl');
      stores = await Promise.all(
        Array.from({ length: CONNECTIONS }, () =>
          RedisLeaseStore.connect({ url, commandTimeoutMs: 30_000 }),
        ),
      );
      expect(await stores[0]!.ensurePool(pool, { initialize: true })).toBe('created');
      // Every other instance sees the pool ready, as a second replica would.
      expect(await stores[1]!.ensurePool(pool, { initialize: true })).toBe('ready');
    });

    afterAll(async () => {
      await stores[0]?.dropPool(pool.name);
      await Promise.all(stores.map(s => s.close()));
    });

    /** Runs `count` tasks over every store with a bounded number in flight per connection. */
    const hammer = async <T>(
      count: number,
      task: (store: RedisLeaseStore, n: number) => Promise<T>,
    ) => {
      let next = 0;
      const out: T[] = [];
      const worker = async (store: RedisLeaseStore): Promise<void> => {
        while (next < count) {
          const n = next++;
          out.push(await task(store, n));
        }
      };
      await Promise.all(
        stores.flatMap(s => Array.from({ length: IN_FLIGHT_PER_CONNECTION }, () => worker(s))),
      );
      return out;
    };

    it('20,000 concurrent allocations: no duplicates, counts consistent', async () => {
      const allocs = await hammer(ALLOCATIONS, (store, n) =>
        store.allocate({
          pool,
          leaseId: newLeaseId(),
          pod: { namespace: `ns-${n % 7}`, generateName: 'app-' },
          ttlMs: 60_000,
        }),
      );
      const ips = allocs.map(a => a.lease.ip);
      expect(ips).toHaveLength(ALLOCATIONS);
      expect(new Set(ips).size).toBe(ALLOCATIONS);
      expect(ips).not.toContain('10.77.0.1');
      expect(ips).not.toContain('10.77.0.0');
      const stats = await stores[3]!.stats(pool);
      expect(stats).toEqual({
        pool: pool.name,
        size: 65_533,
        leased: ALLOCATIONS,
        pending: ALLOCATIONS,
        bound: 0,
        reserved: 0,
        cooling: 0,
        free: 65_533 - ALLOCATIONS,
      });
      const stored = await stores[5]!.leases(pool);
      expect(stored).toHaveLength(ALLOCATIONS);
      expect(new Set(stored.map(l => l.ip)).size).toBe(ALLOCATIONS);
    });

    it('concurrent release, bind and re-allocation (dynamic and sticky) never duplicate', async () => {
      const live: Allocation[] = (await stores[0]!.leases(pool)).map(lease => ({
        lease,
        reused: false,
        dryRun: false,
        retried: false,
      }));
      const toRelease = live.slice(0, 5_000);
      const toBind = live.slice(5_000, 10_000);
      const releasedIps = new Set(toRelease.map(a => a.lease.ip));
      const results = await hammer(15_000, async (store, n) => {
        if (n < 5_000) return store.release(pool, toRelease[n]!.lease.id);
        if (n < 10_000) {
          const a = toBind[n - 5_000]!;
          return store.bind(pool, a.lease.id, { namespace: 'b', name: `p-${n}`, uid: `uid-${n}` });
        }
        return store.allocate({
          pool,
          leaseId: newLeaseId(),
          pod: { namespace: 'sts', name: `db-${n % 50}` },
          stickyKey: n % 2 === 0 ? `sts/db/${n % 50}` : undefined,
          // Each admission of a key replaces the previous (pending) one: its pod is gone.
          replacePendingBefore: ANY_AGE,
          ttlMs: 60_000,
        });
      });
      expect(results.filter(r => 'released' in r && r.released)).toHaveLength(5_000);
      const leases = await stores[9]!.leases(pool);
      const ips = leases.map(l => l.ip);
      expect(new Set(ips).size).toBe(ips.length);
      // 25 sticky keys collapse onto 25 addresses; the 2,500 dynamic ones are fresh addresses.
      expect(leases).toHaveLength(20_000 - 5_000 + 2_500 + 25);
      for (const l of leases) {
        if (l.stickyKey === undefined && l.namespace === 'sts')
          expect(releasedIps.has(l.ip)).toBe(false);
      }
      const stats = await stores[2]!.stats(pool);
      expect(stats).toMatchObject({ leased: leases.length, bound: 5_000, reserved: 25 });
      expect(stats.free).toBe(65_533 - leases.length);
    });
  },
);
