/**
 * Lease safety against real redis-server processes, one test per way the protocol used to give
 * an address twice or leave one behind: a relayout racing allocations, a wiped store re-used,
 * an evicting Redis accepted, admissions left behind by a stalled Redis (which must also answer
 * in time, make /readyz false and heal by itself).
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PODLEASE_BIN } from '../../../scripts/lib/podlease-serve.mjs';
import { startRedisServer, type RedisServer } from '../../../scripts/lib/redis-server.mjs';
import { DEFAULTS } from '../../../src/config/config.js';
import { silentLogger } from '../../../src/log/logger.js';
import { toPoolSet } from '../../../src/pool/pools-file.js';
import { StoreConfigError } from '../../../src/pool/errors.js';
import { newLeaseId } from '../../../src/pool/lease-id.js';
import { RedisLeaseStore } from '../../../src/pool/redis-store.js';
import { createOpsApp } from '../../../src/webhook/app.js';
import { handleMutate } from '../../../src/webhook/handlers.js';
import { createMetrics } from '../../../src/webhook/metrics.js';
import { NO_NAMESPACES } from '../../../src/webhook/namespaces.js';
import { reviewWith } from '../../fixtures/admission/load.js';
import { reconfigure, testPool } from '../../helpers/pools.js';
import {
  ensureBuilt,
  generateCerts,
  httpsAgent,
  postJson,
  startServe,
  type ServeProcess,
} from '../webhook/serve-process.js';

const skip = inject('redisSkip');
const run = promisify(execFile);

describe.skipIf(skip !== '')(`lease safety${skip === '' ? '' : ` (skipped: ${skip})`}`, () => {
  let redis: RedisServer;

  beforeAll(async () => {
    redis = await startRedisServer({ prefix: 'podlease-safety-' });
  });

  afterAll(() => {
    redis.child.kill('SIGCONT');
    redis.stop();
  });

  it('a relayout racing 2,000 allocations on another replica loses and duplicates nothing', async () => {
    const v1 = testPool({ cidr: '10.88.0.0/20', ranges: ['10.88.0.10-10.88.15.200'] });
    const v2 = reconfigure(v1, {
      cidr: '10.88.0.0/20',
      ranges: ['10.88.0.10-10.88.15.200'],
      exclude: ['10.88.15.100'],
    });
    const [a, b] = await Promise.all([
      RedisLeaseStore.connect({ url: redis.url }),
      RedisLeaseStore.connect({ url: redis.url }),
    ]);
    try {
      await a.ensurePool(v1, { initialize: true });
      const acked: { id: string; ip: string }[] = [];
      const allocations = Array.from({ length: 2_000 }, async (_, n) => {
        // Replica a keeps the old pools file; once b has laid the pool out it is refused (503).
        const pool = n % 2 === 0 ? v1 : v2;
        const store = n % 2 === 0 ? a : b;
        try {
          const r = await store.allocate({
            pool,
            leaseId: newLeaseId(),
            pod: { namespace: 'race', generateName: 'p-' },
            ttlMs: 60_000,
          });
          acked.push({ id: r.lease.id, ip: r.lease.ip });
        } catch {
          // layout mismatch: nothing leased
        }
      });
      const relaid = (async () => {
        await new Promise(r => setTimeout(r, 5));
        return b.ensurePool(v2, { initialize: false });
      })();
      await Promise.all([...allocations, relaid]);
      expect(await relaid).toBe('relaid');
      const stored = await b.leases(v2);
      const ips = stored.map(l => l.ip);
      expect(new Set(ips).size).toBe(ips.length);
      const byId = new Map(stored.map(l => [l.id, l.ip]));
      for (const x of acked) expect(byId.get(x.id)).toBe(x.ip);
      expect(stored).toHaveLength(acked.length);
      expect((await b.stats(v2)).leased).toBe(acked.length);
      await b.dropPool(v1.name);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('refuses a Redis that may evict keys, naming the setting and the fix', async () => {
    const lru = await startRedisServer({
      prefix: 'podlease-lru-',
      args: ['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru'],
    });
    try {
      const err = await RedisLeaseStore.connect({ url: lru.url }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreConfigError);
      expect((err as Error).message).toContain('maxmemory-policy allkeys-lru');
      expect((err as Error).message).toContain('maxmemory-policy noeviction');
      expect((err as StoreConfigError).retryable).toBe(false);
      // Fixed by the operator: accepted.
      const admin = await createClient({ url: lru.url }).connect();
      await admin.configSet('maxmemory-policy', 'noeviction');
      await admin.close();
      await (await RedisLeaseStore.connect({ url: lru.url })).close();
    } finally {
      lru.stop();
    }
  });

  it('a Redis stall: admissions answered 503 within the deadline, /readyz false, no lease left behind; it heals by itself', async () => {
    const pools = toPoolSet({
      pools: [{ name: `stall-${Date.now()}`, cidr: '10.89.0.0/24', default: true }],
    });
    const pool = [...pools.pools.values()][0]!;
    const store = await RedisLeaseStore.connect({ url: redis.url, commandTimeoutMs: 200 });
    const ops = createServer(
      createOpsApp({
        store,
        metrics: createMetrics({ store, pools, statsCacheMs: 1_000, statsTimeoutMs: 200 }),
        pingTimeoutMs: 200,
        accepting: () => true,
        namespacesReady: () => true,
        log: silentLogger(),
      }),
    );
    await new Promise<void>(r => ops.listen(0, '127.0.0.1', r));
    const readyz = async (): Promise<number> =>
      (await fetch(`http://127.0.0.1:${(ops.address() as AddressInfo).port}/readyz`)).status;
    try {
      await store.ensurePool(pool, { initialize: true });
      const deps = {
        store,
        pools,
        namespaces: NO_NAMESPACES,
        config: { ...WEBHOOK, storeTimeoutMs: 200 },
        log: silentLogger(),
      };
      const admit = async (uid: string): Promise<{ code: number | undefined; ms: number }> => {
        const started = Date.now();
        const { review } = await handleMutate(
          reviewWith('create-pod-deployment', { uid }),
          {},
          deps,
        );
        const code = review.response?.allowed === true ? 200 : review.response?.status?.code;
        return { code, ms: Date.now() - started };
      };
      expect(await readyz()).toBe(200);
      redis.child.kill('SIGSTOP');
      const answers = Promise.all(Array.from({ length: 12 }, (_, n) => admit(`stall-${n}`)));
      const probe = Date.now();
      expect(await readyz()).toBe(503);
      // The probe answers within its ping timeout (200 ms), not when Redis comes back.
      expect(Date.now() - probe).toBeLessThan(1_500);
      await new Promise(r => setTimeout(r, 2_500));
      redis.child.kill('SIGCONT');
      const answered = await answers;
      expect(answered.map(a => a.code)).toEqual(Array.from({ length: 12 }, () => 503));
      // Each inside the deadline (the 200 ms store timeout), with room for a busy machine.
      for (const a of answered) expect(a.ms).toBeLessThan(1_500);
      await expect.poll(async () => (await store.stats(pool)).leased, { timeout: 15_000 }).toBe(0);
      expect(await store.leases(pool)).toEqual([]);
      // Healed without a restart: ready again, and the next admission is allowed.
      await expect.poll(readyz, { timeout: 10_000 }).toBe(200);
      expect((await admit('after-stall')).code).toBe(200);
      await store.dropPool(pool.name);
    } finally {
      redis.child.kill('SIGCONT');
      await new Promise(r => ops.close(r));
      await store.close();
    }
  });

  describe('a pool is made ready by the operator or the controller, never by a webhook replica', () => {
    const dir = mkdtempSync(join(tmpdir(), 'podlease-init-'));
    const name = `init-${Date.now()}`;
    const poolsFile = join(dir, 'pools.yaml');
    let server: ServeProcess;

    beforeAll(async () => {
      ensureBuilt();
      generateCerts(dir);
      writeFileSync(
        poolsFile,
        `pools:\n  - name: ${name}\n    cidr: 10.90.0.0/24\n    default: true\n`,
      );
      server = await startServe({
        certDir: dir,
        args: ['--pools', poolsFile, '--log-level', 'warn', '--shutdown-delay', '0s'],
        env: { REDIS_URL: redis.url },
        init: false,
        ready: false,
      });
    });

    afterAll(async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    const mutate = async (uid: string): Promise<{ code?: number; message?: string }> => {
      const agent = httpsAgent(join(dir, 'ca.crt'), 4);
      try {
        const reply = await postJson(
          agent,
          server.port,
          '/mutate?timeout=10s',
          reviewWith('create-pod-deployment', { uid }),
        );
        const r = (
          reply.body as {
            response: { allowed: boolean; status?: { code: number; message: string } };
          }
        ).response;
        return r.allowed ? { code: 200 } : { code: r.status?.code, message: r.status?.message };
      } finally {
        agent.destroy();
      }
    };
    const readyz = async (): Promise<number> =>
      (await fetch(`http://127.0.0.1:${server.metricsPort}/readyz`)).status;
    const cli = (...args: string[]) =>
      run(process.execPath, [PODLEASE_BIN, ...args, '--pools', poolsFile, '-o', 'json'], {
        env: { PATH: process.env.PATH ?? '', REDIS_URL: redis.url },
      }).then(
        r => ({ code: 0, out: r.stdout }),
        (e: unknown) => {
          const x = e as { code?: number; stdout?: string };
          return { code: x.code ?? -1, out: x.stdout ?? '' };
        },
      );

    it('answers 503 saying what to run and is not ready until `podlease pools init`', async () => {
      expect(await readyz()).toBe(503);
      const denied = await mutate('init-1');
      expect(denied.code).toBe(503);
      expect(denied.message).toContain('podlease pools init');
      expect((await cli('pools', 'init')).code).toBe(0);
      await expect.poll(readyz, { timeout: 10_000 }).toBe(200);
      expect((await mutate('init-2')).code).toBe(200);
      // A second init is refused: initialising over a store pods use would hand out their addresses.
      const again = await cli('pools', 'init');
      expect(again.code).toBe(1);
      expect(JSON.parse(again.out)).toEqual([{ pool: name, result: 'exists' }]);
    });

    it('a pool wiped while serving is not re-created: 503 and unready until made ready again', async () => {
      const admin = await createClient({ url: redis.url }).connect();
      const keys = await admin.keys(`podlease:{${name}}:*`);
      await admin.del(keys);
      await admin.close();
      const denied = await mutate('wiped-1');
      expect(denied.code).toBe(503);
      expect(denied.message).toContain('not ready');
      await expect.poll(readyz, { timeout: 10_000 }).toBe(503);
      expect((await cli('pools', 'init')).code).toBe(0);
      await expect.poll(readyz, { timeout: 10_000 }).toBe(200);
    });
  });
});

const WEBHOOK = {
  leaseTtlMs: DEFAULTS.leaseTtlMs,
  storeTimeoutMs: 500,
  bodyLimitBytes: 1 << 20,
  serviceAccount: DEFAULTS.serviceAccount,
  statefulSetCreators: DEFAULTS.statefulSetCreators,
};
