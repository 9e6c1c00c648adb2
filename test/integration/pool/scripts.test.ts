import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { StoreUnavailableError } from '../../../src/pool/errors.js';
import { newLeaseId } from '../../../src/pool/lease-id.js';
import { RedisLeaseStore } from '../../../src/pool/redis-store.js';
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
    await admin.scriptFlush();
    expect(await admin.sendCommand(['SCRIPT', 'EXISTS', '0'.repeat(40)])).toEqual([0]);
    const a = await store.allocate({
      pool,
      leaseId: newLeaseId(),
      pod: { namespace: 'a' },
      ttlMs: 1000,
    });
    expect(a.lease.ip).toBe('10.66.0.2');
    await admin.close();
  });

  it('keys carry the pool hash tag: every key of a pool maps to one cluster slot', async () => {
    const admin = await createClient({ url: inject('redisUrl') }).connect();
    const keys = await admin.keys(`podlease:{${pool.name}}:*`);
    expect(keys.length).toBeGreaterThanOrEqual(5);
    for (const k of keys) expect(k).toMatch(new RegExp(`^podlease:\\{${pool.name}\\}:[a-z]+$`));
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
