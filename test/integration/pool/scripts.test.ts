import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { StoreUnavailableError } from '../../../src/pool/errors.js';
import { newLeaseId } from '../../../src/pool/lease-id.js';
import { createHash } from 'node:crypto';
import { poolKeys } from '../../../src/pool/keys.js';
import { RedisLeaseStore } from '../../../src/pool/redis-store.js';
import { scriptName, scripts } from '../../../src/pool/scripts.js';
import { testPool } from '../../helpers/pools.js';

const skip = inject('redisSkip');

describe.skipIf(skip !== '')(`Redis scripts${skip === '' ? '' : ` (skipped: ${skip})`}`, () => {
  let store: RedisLeaseStore;
  const pool = testPool({ cidr: '10.66.0.0/24' });

  beforeAll(async () => {
    store = await RedisLeaseStore.connect({ url: inject('redisUrl') });
    await store.ensurePool(pool, { initialize: true });
  });

  afterAll(async () => {
    await store.dropPool(pool.name);
    await store.close();
  });

  it('falls back from EVALSHA to EVAL after SCRIPT FLUSH (NOSCRIPT)', async () => {
    const admin = await createClient({ url: inject('redisUrl') }).connect();
    await store.allocate({ pool, leaseId: newLeaseId(), pod: { namespace: 'a' }, ttlMs: 1000 });
    const sha = createHash('sha1').update(scripts[scriptName('allocate')]!.SCRIPT).digest('hex');
    expect(await admin.sendCommand(['SCRIPT', 'EXISTS', sha])).toEqual([1]);
    await admin.scriptFlush();
    expect(await admin.sendCommand(['SCRIPT', 'EXISTS', sha])).toEqual([0]);
    const a = await store.allocate({
      pool,
      leaseId: newLeaseId(),
      pod: { namespace: 'a' },
      ttlMs: 1000,
    });
    expect(a.lease.ip).toBe('10.66.0.2');
    // The fallback ran the script by its source, which loads it again.
    expect(await admin.sendCommand(['SCRIPT', 'EXISTS', sha])).toEqual([1]);
    await admin.close();
  });

  it('keys carry the pool hash tag: every key of a pool maps to one cluster slot', async () => {
    const admin = await createClient({ url: inject('redisUrl') }).connect();
    const keys = await admin.keys('*');
    const ours = keys.filter(k => k.includes(pool.name));
    expect(ours.length).toBeGreaterThanOrEqual(5);
    // Every key the store wrote is one of keys.ts's, and its first {…} (the part Redis Cluster
    // hashes) is the pool name alone.
    const known = new Set(Object.values(poolKeys(pool.name)));
    for (const k of ours) {
      expect(known.has(k)).toBe(true);
      expect(/\{([^}]*)\}/.exec(k)?.[1]).toBe(pool.name);
    }
    await admin.close();
  });

  it('release frees an address only while it is held by that very lease id', async () => {
    const admin = await createClient({ url: inject('redisUrl') }).connect();
    const live = await store.allocate({
      pool,
      leaseId: newLeaseId(),
      pod: { namespace: 'a', name: 'live' },
      ttlMs: 60_000,
    });
    // A void record pointing at the same address (as a lost race once left behind).
    const keys = poolKeys(pool.name);
    const liveRecord = JSON.parse((await admin.hGet(keys.leases, live.lease.id))!) as { i: number };
    expect(await admin.hGet(keys.byip, String(liveRecord.i))).toBe(live.lease.id);
    const voidId = newLeaseId();
    await admin.hSet(
      keys.leases,
      voidId,
      JSON.stringify({ i: liveRecord.i, s: 'pending', ns: 'a', c: 1 }),
    );
    const before = await store.stats(pool);
    expect(await store.release(pool, voidId)).toMatchObject({
      released: false,
      reason: 'not-found',
    });
    expect(await store.stats(pool)).toMatchObject({ leased: before.leased, free: before.free });
    expect((await store.get(pool, live.lease.id))?.ip).toBe(live.lease.ip);
    expect(await store.get(pool, voidId)).toBeUndefined();
    await admin.close();
  });

  it('released addresses are scored by release time (ms); old release-sequence scores read as long rested', async () => {
    const p = testPool({ cidr: '10.66.1.0/29' }); // .1-.6
    await store.ensurePool(p, { initialize: true });
    const admin = await createClient({ url: inject('redisUrl') }).connect();
    try {
      const keys = poolKeys(p.name);
      const leases = [];
      for (let i = 0; i < 6; i++) {
        const a = await store.allocate({
          pool: p,
          leaseId: newLeaseId(),
          pod: { namespace: 'a' },
          ttlMs: 1000,
        });
        leases.push(a.lease);
      }
      const t = Date.now();
      await store.release(p, leases[0]!.id, { now: t });
      await store.release(p, leases[1]!.id, { now: t });
      expect(await admin.zRangeWithScores(keys.released, 0, -1)).toEqual([
        { value: '0', score: t },
        { value: '1', score: t },
      ]);
      // A release made by script contract v2 scored a sequence number: 1, 2, …
      await admin.zAdd(keys.released, { score: 7, value: '1' });
      const cool = { now: t + 1, reuseCooldownMs: 60_000 };
      expect(await store.stats(p, cool)).toMatchObject({ cooling: 1, free: 1 });
      const a = await store.allocate({
        pool: p,
        leaseId: newLeaseId(),
        pod: { namespace: 'a' },
        ttlMs: 1000,
        ...cool,
      });
      expect(a.lease.ip).toBe(leases[1]!.ip);
      expect(await admin.hGet(keys.meta, 'seq')).toBeNull();
    } finally {
      await admin.close();
      await store.dropPool(p.name);
    }
  });

  it('retention policies live in podlease:{pool}:policy and outlive the address state', async () => {
    const p = testPool({ cidr: '10.66.2.0/29' });
    await store.ensurePool(p, { initialize: true });
    const admin = await createClient({ url: inject('redisUrl') }).connect();
    try {
      const keys = poolKeys(p.name);
      await store.setPolicy(p, 'db/pg', { whenScaled: 'Delete', whenDeleted: 'Retain' });
      expect(await admin.hGetAll(keys.policy)).toEqual({
        'db/pg': '{"whenScaled":"Delete","whenDeleted":"Retain"}',
      });
      // A wiped (or evicted) address state: init clears what is left of it, not the policies.
      await admin.del([keys.meta, keys.dirty]);
      expect(await store.ensurePool(p, { initialize: true })).toBe('created');
      expect(await store.policies(p)).toEqual(
        new Map([['db/pg', { whenScaled: 'Delete', whenDeleted: 'Retain' }]]),
      );
      // A value nobody wrote through the store is refused, naming it, rather than guessed at.
      await admin.hSet(keys.policy, 'db/bad', '{"whenScaled":"Keep"}');
      await expect(store.policies(p)).rejects.toThrow(
        /the stored retention policy of db\/bad is unreadable: \{"whenScaled":"Keep"\}/,
      );
      await store.dropPool(p.name);
      expect(await admin.exists(keys.policy)).toBe(0);
    } finally {
      await admin.close();
      await store.dropPool(p.name);
    }
  });

  it('a store whose Redis is gone fails fast with a retryable StoreUnavailableError', async () => {
    await expect(
      RedisLeaseStore.connect({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 500 }),
    ).rejects.toMatchObject({
      code: 'STORE_UNAVAILABLE',
      retryable: true,
    });
    const s = await RedisLeaseStore.connect({ url: inject('redisUrl'), commandTimeoutMs: 300 });
    await s.close();
    await expect(s.stats(pool)).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});
