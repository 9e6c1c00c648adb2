/**
 * Allocation batching on a real redis-server: concurrent allocations of one pool share one
 * allocate-8.lua call (counted by Redis itself, INFO commandstats), each still gets its own
 * result or its own typed error, items of one call behave as calls in that order, and a call
 * that fails as a whole (its connection killed, NOSCRIPT) fails or answers every item in it.
 */
import { createClient, ErrorReply } from 'redis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../../../scripts/lib/redis-server.mjs';
import {
  AddressInUseError,
  LayoutMismatchError,
  LeaseIdExistsError,
  PoolExhaustedError,
  ReplicasBehindError,
  StoreUnavailableError,
} from '../../../src/pool/errors.js';
import { poolKeys } from '../../../src/pool/keys.js';
import { newLeaseId } from '../../../src/pool/lease-id.js';
import type { Pool } from '../../../src/pool/pools-file.js';
import { RedisLeaseStore } from '../../../src/pool/redis-store.js';
import type { AllocateRequest, Allocation } from '../../../src/pool/store.js';
import { testPool } from '../../helpers/pools.js';

const skip = inject('redisSkip');

const connectAdmin = (url: string) => createClient({ url }).connect();
type Admin = Awaited<ReturnType<typeof connectAdmin>>;

const commandCalls = async (admin: Admin, command: string): Promise<number> => {
  const info = await admin.info('commandstats');
  return Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
};

/**
 * Script calls the store made, as Redis counted them: each sends one EVALSHA (then an EVAL of
 * the source when it was answered NOSCRIPT; a call with an item's error reply counts as failed,
 * so `calls` it is, not successes).
 */
const scriptCalls = (admin: Admin): Promise<number> => commandCalls(admin, 'evalsha');

const req = (pool: Pool, extra: Partial<AllocateRequest> = {}): AllocateRequest => ({
  pool,
  leaseId: newLeaseId(),
  pod: { namespace: 'batch', generateName: 'app-' },
  ttlMs: 60_000,
  ...extra,
});

/**
 * An allocation of the pool's name under another layout hash: refused (-6) before the script
 * writes anything. Sent first, it goes alone and makes the calls after it queue into one batch.
 */
const decoy = (store: RedisLeaseStore, pool: Pool): Promise<unknown> =>
  store
    .allocate(req({ ...pool, layout: { ...pool.layout, hash: 'decoy' } }))
    .catch((e: unknown) => {
      if (!(e instanceof LayoutMismatchError)) throw e;
    });

type Settled = { ok: Allocation } | { err: unknown };
const settle = (p: Promise<Allocation>): Promise<Settled> =>
  p.then(
    ok => ({ ok }),
    (err: unknown) => ({ err }),
  );
const ok = (s: Settled | undefined): Allocation => {
  if (s !== undefined && 'ok' in s) return s.ok;
  throw new Error('refused, not allocated', { cause: s?.err });
};
const err = (s: Settled | undefined): unknown => {
  if (s === undefined || !('err' in s)) throw new Error('allocated, not refused');
  return s.err;
};

describe.skipIf(skip !== '')(
  `allocation batching${skip === '' ? '' : ` (skipped: ${skip})`}`,
  () => {
    let store: RedisLeaseStore;
    let admin: Admin;
    const created: Pool[] = [];

    const pool = async (entry: Record<string, unknown>): Promise<Pool> => {
      const p = testPool(entry);
      created.push(p);
      await store.ensurePool(p, { initialize: true });
      return p;
    };

    /** Runs `calls` with one decoy first; asserts they shared one script call. */
    const inOneBatch = async (
      p: Pool,
      calls: (() => Promise<Allocation>)[],
    ): Promise<Settled[]> => {
      const before = store.allocationBatches;
      const scripts = await scriptCalls(admin);
      const first = decoy(store, p);
      const out = await Promise.all(calls.map(c => settle(c())));
      await first;
      const after = store.allocationBatches;
      expect(after.items - before.items).toBe(calls.length + 1);
      expect(after.batches - before.batches).toBe(2);
      // Redis saw two script calls: the decoy alone, then every call of the batch.
      expect((await scriptCalls(admin)) - scripts).toBe(2);
      return out;
    };

    beforeAll(async () => {
      store = await RedisLeaseStore.connect({ url: inject('redisUrl'), commandTimeoutMs: 30_000 });
      admin = await connectAdmin(inject('redisUrl'));
    });

    afterEach(async () => {
      for (const p of created.splice(0)) await store.dropPool(p.name);
    });

    afterAll(async () => {
      await admin.close();
      await store.close();
    });

    it('500 concurrent allocations share a few script calls; every address is distinct', async () => {
      const p = await pool({ cidr: '10.71.0.0/22' });
      const scripts = await scriptCalls(admin);
      const before = store.allocationBatches;
      const all = await Promise.all(Array.from({ length: 500 }, () => store.allocate(req(p))));
      const calls = (await scriptCalls(admin)) - scripts;
      expect(calls).toBeLessThan(500);
      // One alone (the pool was idle), then batches of at most 64.
      expect(calls).toBeLessThanOrEqual(1 + Math.ceil(499 / 64));
      expect(store.allocationBatches.batches - before.batches).toBe(calls);
      expect(store.allocationBatches.largest).toBe(64);
      const ips = all.map(a => a.lease.ip);
      expect(new Set(ips).size).toBe(500);
      expect(await store.stats(p)).toMatchObject({ leased: 500, pending: 500 });
      const stored = await store.leases(p);
      expect(new Map(stored.map(l => [l.id, l.ip]))).toEqual(
        new Map(all.map(a => [a.lease.id, a.lease.ip])),
      );
    });

    it('one batch, each item its own outcome: in use, leased, exhausted, id exists, an error raised inside the script, a retry', async () => {
      const p = await pool({ cidr: '10.71.4.0/29' }); // .1–.6
      const held: Allocation[] = [];
      for (let i = 0; i < 5; i++) {
        const pod = { namespace: 'batch', name: `p${i}` };
        held.push(await store.allocate(req(p, { pod, requestUid: `uid-${i}` })));
      }
      expect(held.map(a => a.lease.ip)).toEqual([1, 2, 3, 4, 5].map(n => `10.71.4.${n}`));
      // A stored record nobody can read: the allocation asking with its id raises in the script.
      const corrupt = newLeaseId();
      await admin.hSet(poolKeys(p.name).leases, corrupt, 'not json');
      const won = newLeaseId();
      const retryOf = held[1]!;
      const out = await inOneBatch(p, [
        () => store.allocate(req(p, { ip: '10.71.4.1' })),
        () => store.allocate(req(p, { leaseId: won, requestUid: 'uid-won' })),
        () => store.allocate(req(p)),
        () => store.allocate(req(p, { leaseId: won, requestUid: 'another' })),
        () => store.allocate(req(p, { leaseId: corrupt })),
        () => store.allocate(req(p, { ip: '10.71.4.6' })),
        () =>
          store.allocate(
            req(p, { leaseId: retryOf.lease.id, requestUid: retryOf.lease.requestUid }),
          ),
      ]);
      const [inUse, leased, exhausted, exists, raised, takenInBatch, retried] = out;
      expect(err(inUse)).toBeInstanceOf(AddressInUseError);
      expect((err(inUse) as Error).message).toContain('pod batch/p0');
      expect(ok(leased).lease).toMatchObject({ ip: '10.71.4.6', id: won, state: 'pending' });
      expect(err(exhausted)).toBeInstanceOf(PoolExhaustedError);
      expect(err(exists)).toBeInstanceOf(LeaseIdExistsError);
      expect(err(raised)).toBeInstanceOf(ErrorReply);
      expect((err(raised) as Error).message).toMatch(/^ERR .*(json|token|Expected)/i);
      // Held by the lease made two items earlier in the same call.
      expect(err(takenInBatch)).toBeInstanceOf(AddressInUseError);
      expect(ok(retried)).toMatchObject({ retried: true, lease: { ip: retryOf.lease.ip } });
      await admin.hDel(poolKeys(p.name).leases, corrupt);
      expect(await store.stats(p)).toMatchObject({ leased: 6, free: 0 });
      expect((await store.leases(p)).map(l => l.ip).sort()).toEqual(
        [1, 2, 3, 4, 5, 6].map(n => `10.71.4.${n}`),
      );
    });

    it('two items of one batch asking for the same exact address: the first wins, the second is refused', async () => {
      const p = await pool({ cidr: '10.71.5.0/24' });
      const [a, b] = await inOneBatch(p, [
        () => store.allocate(req(p, { ip: '10.71.5.9', pod: { namespace: 'x', name: 'first' } })),
        () => store.allocate(req(p, { ip: '10.71.5.9', pod: { namespace: 'y', name: 'second' } })),
      ]);
      expect(ok(a).lease.ip).toBe('10.71.5.9');
      expect(err(b)).toBeInstanceOf(AddressInUseError);
      expect((err(b) as Error).message).toContain('pod x/first');
      expect(await store.leases(p)).toHaveLength(1);
    });

    it('the same lease id twice in one batch: a retry of the same request is answered the same lease, another request is refused', async () => {
      const p = await pool({ cidr: '10.71.6.0/24' });
      const id = newLeaseId();
      const other = newLeaseId();
      const [first, retry, firstOther, refused] = await inOneBatch(p, [
        () => store.allocate(req(p, { leaseId: id, requestUid: 'r1' })),
        () => store.allocate(req(p, { leaseId: id, requestUid: 'r1' })),
        () => store.allocate(req(p, { leaseId: other })),
        () => store.allocate(req(p, { leaseId: other })),
      ]);
      expect(ok(first)).toMatchObject({ retried: false });
      expect(ok(retry)).toMatchObject({ retried: true, lease: { id, ip: ok(first).lease.ip } });
      expect(ok(firstOther).lease.ip).not.toBe(ok(first).lease.ip);
      expect(err(refused)).toBeInstanceOf(LeaseIdExistsError);
      expect(await store.stats(p)).toMatchObject({ leased: 2 });
    });

    it('a dry run is sent alone and writes nothing, between batched allocations', async () => {
      const p = await pool({ cidr: '10.71.7.0/24' });
      const before = store.allocationBatches;
      const [a, dry, b] = await Promise.all([
        store.allocate(req(p)),
        store.allocate(req(p, { dryRun: true })),
        store.allocate(req(p)),
      ]);
      expect(dry.dryRun).toBe(true);
      expect(new Set([a.lease.ip, b.lease.ip]).size).toBe(2);
      expect(store.allocationBatches.items - before.items).toBe(2);
      expect(await store.stats(p)).toMatchObject({ leased: 2 });
    });

    it('after SCRIPT FLUSH a batch is sent again by its source (NOSCRIPT → EVAL); every item answered', async () => {
      const p = await pool({ cidr: '10.71.8.0/24' });
      await store.allocate(req(p));
      await admin.scriptFlush();
      const evals = await commandCalls(admin, 'eval');
      const all = await Promise.all(Array.from({ length: 40 }, () => store.allocate(req(p))));
      expect(new Set(all.map(a => a.lease.ip)).size).toBe(40);
      expect((await commandCalls(admin, 'eval')) - evals).toBeGreaterThanOrEqual(1);
      expect(await store.stats(p)).toMatchObject({ leased: 41 });
    });

    it('with --redis-min-replicas and no replica: each leased item of a batch is refused as behind, the others keep their own error; one WAIT per call', async () => {
      const behind = await RedisLeaseStore.connect({
        url: inject('redisUrl'),
        minReplicas: 1,
        minReplicasTimeoutMs: 10,
      });
      try {
        const p = await pool({ cidr: '10.71.9.0/29' }); // 6 addresses
        const waits = await commandCalls(admin, 'wait');
        const out = await Promise.all(
          Array.from({ length: 8 }, () => settle(behind.allocate(req(p)))),
        );
        const errors = out.map(err);
        expect(errors.filter(e => e instanceof ReplicasBehindError)).toHaveLength(6);
        expect(errors.filter(e => e instanceof PoolExhaustedError)).toHaveLength(2);
        // One alone (idle pool), then the other seven in one call: two WAITs, not six.
        expect(behind.allocationBatches).toMatchObject({ batches: 2, items: 8 });
        expect((await commandCalls(admin, 'wait')) - waits).toBe(2);
      } finally {
        await behind.close();
      }
    });
  },
);

describe.skipIf(skip !== '')(
  `allocation batching, the connection killed mid-batch${skip === '' ? '' : ` (skipped: ${skip})`}`,
  () => {
    let redis: RedisServer;

    beforeAll(async () => {
      redis = await startRedisServer({ prefix: 'podlease-batch-kill-' });
    });

    afterAll(() => {
      redis.stop();
    });

    it('every item of the batch rejects as unavailable, nothing is written, and allocation resumes without a duplicate', async () => {
      const store = await RedisLeaseStore.connect({ url: redis.url, commandTimeoutMs: 10_000 });
      const admin = await createClient({ url: redis.url }).connect();
      try {
        const p = testPool({ cidr: '10.72.0.0/24' });
        await store.ensurePool(p, { initialize: true });
        const first = await store.allocate(req(p));
        // Scripts wait while the clients are paused for writes; the admin's CLIENT commands run.
        await admin.sendCommand(['CLIENT', 'PAUSE', '60000', 'WRITE']);
        const before = store.allocationBatches;
        const calls = Array.from({ length: 30 }, () => settle(store.allocate(req(p))));
        // Wait until Redis holds the store's script calls (postponed by the pause).
        await expect
          .poll(
            async () => Number(/blocked_clients:(\d+)/.exec(await admin.info('clients'))?.[1]),
            {
              timeout: 20_000,
            },
          )
          .toBeGreaterThanOrEqual(1);
        await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes']);
        await admin.sendCommand(['CLIENT', 'UNPAUSE']);
        const out = await Promise.all(calls);
        const sent = store.allocationBatches;
        expect(sent.items - before.items).toBe(30);
        expect(sent.batches - before.batches).toBe(2); // one alone, then 29 in one call
        for (const o of out) {
          expect(err(o)).toBeInstanceOf(StoreUnavailableError);
          expect((err(o) as StoreUnavailableError).retryable).toBe(true);
        }
        // Nothing of the killed calls ran: only the first lease is there.
        expect(await store.leases(p)).toHaveLength(1);
        expect(await store.stats(p)).toMatchObject({ leased: 1, pending: 1 });
        // The client reconnects by itself; the next allocations are distinct and new.
        await expect
          .poll(
            () =>
              store.ping().then(
                () => true,
                () => false,
              ),
            { timeout: 20_000 },
          )
          .toBe(true);
        const again = await Promise.all(Array.from({ length: 30 }, () => store.allocate(req(p))));
        const ips = [first, ...again].map(a => a.lease.ip);
        expect(new Set(ips).size).toBe(31);
        expect(await store.stats(p)).toMatchObject({ leased: 31 });
        await store.dropPool(p.name);
      } finally {
        await admin.sendCommand(['CLIENT', 'UNPAUSE']).catch(() => undefined);
        await admin.close();
        await store.close();
      }
    });
  },
);
