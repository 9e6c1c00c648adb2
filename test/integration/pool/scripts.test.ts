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
