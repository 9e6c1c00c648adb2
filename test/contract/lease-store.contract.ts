/**
 * The LeaseStore contract: one suite, run against MemoryLeaseStore (unit project) and
 * RedisLeaseStore on a real redis-server (integration project). Keeps the fake honest against
 * the Lua semantics (BullMQ's adapter-conformance pattern).
 */
import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Pool } from '../../src/pool/pools-file.js';
import {
  AddressInUseError,
  LayoutMismatchError,
  LeaseConflictError,
  LeaseIdExistsError,
  LeaseNotFoundError,
  NotInPoolError,
  PoolExhaustedError,
  PoolRecoveringError,
  PoolShrinkError,
  ReservationExistsError,
} from '../../src/pool/errors.js';
import { newLeaseId } from '../../src/pool/lease-id.js';
import type { AllocateRequest, LeaseStore, PodRef } from '../../src/pool/store.js';
import { reconfigure, testPool } from '../helpers/pools.js';

/** replacePendingBefore for a takeover whatever the pending lease's age. */
const ANY_AGE = Number.MAX_SAFE_INTEGER;

export interface StoreHarness {
  store: LeaseStore;
  /** Removes a pool's state after a test (Redis: DEL of its keys). */
  drop(pool: Pool): Promise<void>;
}

const TTL = 60_000;
const dep = (ns = 'default'): PodRef => ({ namespace: ns, generateName: 'web-7d9f-' });

export const describeLeaseStoreContract = (
  name: string,
  makeHarness: () => Promise<StoreHarness>,
  skipReason = '',
): void => {
  describe.skipIf(skipReason !== '')(`LeaseStore contract: ${name}${skipReason}`, () => {
    let h: StoreHarness;
    const created: Pool[] = [];

    beforeAll(async () => {
      h = await makeHarness();
    });

    afterEach(async () => {
      for (const p of created.splice(0)) await h.drop(p);
    });

    const pool = async (entry: Record<string, unknown>): Promise<Pool> => {
      const p = testPool(entry);
      created.push(p);
      expect(await h.store.ensurePool(p, { initialize: true })).toBe('created');
      return p;
    };

    const lease = (p: Pool, extra: Partial<AllocateRequest> = {}) =>
      h.store.allocate({ pool: p, leaseId: newLeaseId(), pod: dep(), ttlMs: TTL, ...extra });

    it('a /28 with a gateway yields exactly 13 addresses, then a clear exhausted error', async () => {
      const p = await pool({ cidr: '10.99.0.0/28', gateway: '10.99.0.1' });
      const ips: string[] = [];
      for (let i = 0; i < 13; i++) ips.push((await lease(p)).lease.ip);
      expect(new Set(ips).size).toBe(13);
      expect(ips).not.toContain('10.99.0.0');
      expect(ips).not.toContain('10.99.0.1');
      expect(ips).not.toContain('10.99.0.15');
      expect(ips[0]).toBe('10.99.0.2');
      const err = await lease(p).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PoolExhaustedError);
      expect((err as Error).message).toBe(
        `pool "${p.name}" is exhausted: 13 of 13 addresses leased`,
      );
      expect(await h.store.stats(p)).toMatchObject({ size: 13, leased: 13, free: 0, pending: 13 });
    });

    it('an IPv6 pool with a range hands out its range', async () => {
      const p = await pool({ cidr: 'fd00:10::/64', ranges: ['fd00:10::100-fd00:10::103'] });
      const ips = [];
      for (let i = 0; i < 4; i++) ips.push((await lease(p)).lease.ip);
      expect(ips).toEqual(['fd00:10::100', 'fd00:10::101', 'fd00:10::102', 'fd00:10::103']);
      await expect(lease(p)).rejects.toThrow(/4 of 4 addresses leased/);
    });

    it('next-fit: a released address comes back only after every other free address', async () => {
      const p = await pool({ cidr: '10.99.1.0/29' }); // .1-.6
      const a = await lease(p);
      const b = await lease(p);
      expect([a.lease.ip, b.lease.ip]).toEqual(['10.99.1.1', '10.99.1.2']);
      expect((await h.store.release(p, a.lease.id)).released).toBe(true);
      expect((await h.store.release(p, b.lease.id)).released).toBe(true);
      const next = [];
      for (let i = 0; i < 4; i++) next.push((await lease(p)).lease.ip);
      expect(next).toEqual(['10.99.1.3', '10.99.1.4', '10.99.1.5', '10.99.1.6']);
      // Fresh addresses used up: the oldest released comes first.
      expect((await lease(p)).lease.ip).toBe('10.99.1.1');
      expect((await lease(p)).lease.ip).toBe('10.99.1.2');
      await expect(lease(p)).rejects.toBeInstanceOf(PoolExhaustedError);
    });

    it('an exact address: free, held by another pod (named), outside the pool', async () => {
      const p = await pool({
        cidr: '10.99.2.0/24',
        gateway: '10.99.2.1',
        exclude: ['10.99.2.128/25'],
      });
      const a = await lease(p, { ip: '10.99.2.77', pod: { namespace: 'db', name: 'pg-0' } });
      expect(a.lease.ip).toBe('10.99.2.77');
      const taken = await lease(p, {
        ip: '10.99.2.77',
        pod: { namespace: 'x', name: 'other' },
      }).catch((e: unknown) => e);
      expect(taken).toBeInstanceOf(AddressInUseError);
      expect((taken as Error).message).toContain('pod db/pg-0');
      await expect(lease(p, { ip: '10.99.2.1' })).rejects.toThrow(/the pool gateway/);
      await expect(lease(p, { ip: '10.99.2.255' })).rejects.toThrow(/broadcast/);
      await expect(lease(p, { ip: '10.99.2.200' })).rejects.toThrow(/excluded/);
      await expect(lease(p, { ip: '10.98.0.1' })).rejects.toBeInstanceOf(NotInPoolError);
      // Dynamic allocation never hands out the exact address or the excluded half.
      for (let i = 0; i < 20; i++) {
        const ip = (await lease(p)).lease.ip;
        expect(ip).not.toBe('10.99.2.77');
        expect(Number(ip.split('.')[3])).toBeLessThan(128);
      }
    });

    it('an exact address held by a pod not yet named names its generateName', async () => {
      const p = await pool({ cidr: '10.99.3.0/24' });
      await lease(p, { ip: '10.99.3.9' });
      await expect(
        lease(p, { ip: '10.99.3.9', pod: { namespace: 'z', name: 'n' } }),
      ).rejects.toThrow('held by a pod of default/web-7d9f-* not yet named');
    });

    it('the same pod name takes a pending exact address over only with replacePendingBefore, never a bound one', async () => {
      const p = await pool({ cidr: '10.99.4.0/24' });
      const pod = { namespace: 'db', name: 'pg-0' };
      const first = await lease(p, { ip: '10.99.4.4', pod });
      // A duplicate CREATE while the first pod may still exist: refused, naming the holder.
      await expect(lease(p, { ip: '10.99.4.4', pod })).rejects.toThrow('held by pod db/pg-0');
      // Another pod name never takes it over, even with replacePendingBefore.
      await expect(
        lease(p, {
          ip: '10.99.4.4',
          pod: { namespace: 'db', name: 'pg-1' },
          replacePendingBefore: ANY_AGE,
        }),
      ).rejects.toBeInstanceOf(AddressInUseError);
      const again = await lease(p, { ip: '10.99.4.4', pod, replacePendingBefore: ANY_AGE });
      expect(again.replaced).toBe(first.lease.id);
      expect((await h.store.release(p, first.lease.id)).reason).toBe('not-found');
      expect((await h.store.stats(p)).leased).toBe(1);
      expect((await h.store.get(p, again.lease.id))?.ip).toBe('10.99.4.4');
      await h.store.bind(p, again.lease.id, { ...pod, uid: 'u-pg' });
      await expect(
        lease(p, { ip: '10.99.4.4', pod, replacePendingBefore: ANY_AGE }),
      ).rejects.toThrow('held by pod db/pg-0');
      expect((await h.store.get(p, again.lease.id))?.state).toBe('bound');
    });

    it('sticky: the same key keeps its address under a new lease id; a late release frees nothing', async () => {
      const p = await pool({ cidr: '10.99.5.0/24' });
      const key = 'db/web/0';
      const pod = { namespace: 'db', name: 'web-0' };
      const first = await lease(p, { stickyKey: key, pod });
      await lease(p); // someone else in between
      await expect(lease(p, { stickyKey: key, pod })).rejects.toBeInstanceOf(AddressInUseError);
      // A pending lease younger than replacePendingBefore is not replaced either.
      await expect(
        lease(p, { stickyKey: key, pod, replacePendingBefore: first.lease.createdAt - 1 }),
      ).rejects.toBeInstanceOf(AddressInUseError);
      const second = await lease(p, {
        stickyKey: key,
        pod,
        replacePendingBefore: first.lease.createdAt,
      });
      expect(second.lease.ip).toBe(first.lease.ip);
      expect(second.reused).toBe(true);
      expect(second.replaced).toBe(first.lease.id);
      expect(second.lease.id).not.toBe(first.lease.id);
      expect(await h.store.release(p, first.lease.id)).toMatchObject({
        released: false,
        reason: 'not-found',
      });
      // Releasing the live lease keeps the reservation: the address is not handed out.
      expect(await h.store.release(p, second.lease.id)).toMatchObject({
        released: true,
        keptByReservation: true,
      });
      for (let i = 0; i < 5; i++) expect((await lease(p)).lease.ip).not.toBe(first.lease.ip);
      expect(await h.store.reservations(p)).toEqual([{ pool: p.name, key, ip: first.lease.ip }]);
      const third = await lease(p, { stickyKey: key, pod });
      expect(third.lease.ip).toBe(first.lease.ip);
      expect(await h.store.unreserve(p, key)).toMatchObject({ removed: true, freed: false });
      expect(await h.store.release(p, third.lease.id)).toMatchObject({
        released: true,
        keptByReservation: false,
      });
      expect(await h.store.unreserve(p, key)).toEqual({ removed: false, freed: false });
    });

    it('ip-list: a sticky key with an exact address; another key cannot take it', async () => {
      const p = await pool({ cidr: '10.99.6.0/24' });
      const a = await lease(p, {
        stickyKey: 'ns/kafka/0',
        ip: '10.99.6.10',
        pod: { namespace: 'ns', name: 'kafka-0' },
      });
      expect(a.lease.ip).toBe('10.99.6.10');
      await expect(
        lease(p, {
          stickyKey: 'ns/kafka/1',
          ip: '10.99.6.10',
          pod: { namespace: 'ns', name: 'kafka-1' },
        }),
      ).rejects.toThrow(/held by pod ns\/kafka-0/);
      await h.store.release(p, a.lease.id);
      await expect(lease(p, { ip: '10.99.6.10' })).rejects.toThrow(
        /sticky reservation ns\/kafka\/0/,
      );
    });

    it('bind is idempotent, refuses a second UID, and reports unknown ids', async () => {
      const p = await pool({ cidr: '10.99.7.0/24' });
      const a = await lease(p);
      const pod = { namespace: 'default', name: 'web-7d9f-abcde', uid: 'uid-1' };
      const bound = await h.store.bind(p, a.lease.id, pod);
      expect(bound).toMatchObject({
        state: 'bound',
        uid: 'uid-1',
        name: 'web-7d9f-abcde',
        ip: a.lease.ip,
      });
      expect(bound.expiresAt).toBeUndefined();
      expect((await h.store.bind(p, a.lease.id, pod)).uid).toBe('uid-1');
      await expect(h.store.bind(p, a.lease.id, { ...pod, uid: 'uid-2' })).rejects.toBeInstanceOf(
        LeaseConflictError,
      );
      await expect(h.store.bind(p, newLeaseId(), pod)).rejects.toBeInstanceOf(LeaseNotFoundError);
      expect(await h.store.stats(p)).toMatchObject({ pending: 0, bound: 1, leased: 1 });
    });

    it('release is compare-and-delete with pending and uid guards', async () => {
      const p = await pool({ cidr: '10.99.8.0/24' });
      const a = await lease(p);
      await h.store.bind(p, a.lease.id, { namespace: 'default', name: 'x', uid: 'u1' });
      expect(await h.store.release(p, a.lease.id, { onlyIfPending: true })).toMatchObject({
        released: false,
        reason: 'not-pending',
      });
      expect(await h.store.release(p, a.lease.id, { uid: 'u2' })).toMatchObject({
        released: false,
        reason: 'uid-mismatch',
      });
      expect(await h.store.release(p, a.lease.id, { uid: 'u1' })).toMatchObject({
        released: true,
        ip: a.lease.ip,
      });
      expect((await h.store.release(p, a.lease.id)).released).toBe(false);
      expect(await h.store.get(p, a.lease.id)).toBeUndefined();
      expect((await h.store.stats(p)).leased).toBe(0);
    });

    it('expired lists pending leases past their expiry, oldest first, not bound ones', async () => {
      const p = await pool({ cidr: '10.99.9.0/24' });
      const now = Date.now();
      const old = await lease(p, { now: now - 10_000, ttlMs: 1_000 });
      const older = await lease(p, { now: now - 20_000, ttlMs: 1_000 });
      const bound = await lease(p, { now: now - 20_000, ttlMs: 1_000 });
      await lease(p, { now, ttlMs: 60_000 });
      await h.store.bind(p, bound.lease.id, { namespace: 'default', name: 'b', uid: 'u' });
      const expired = await h.store.expired(p, now);
      expect(expired.map(l => l.id)).toEqual([older.lease.id, old.lease.id]);
      expect(expired[0]).toMatchObject({ state: 'pending', expiresAt: now - 19_000 });
    });

    it('dryRun runs every check and writes nothing', async () => {
      const p = await pool({ cidr: '10.99.10.0/30' }); // .1 .2
      const dry = await lease(p, { dryRun: true });
      expect(dry).toMatchObject({ dryRun: true });
      expect(dry.lease.ip).toBe('10.99.10.1');
      expect(await h.store.stats(p)).toMatchObject({ leased: 0, pending: 0 });
      expect(await h.store.get(p, dry.lease.id)).toBeUndefined();
      await lease(p, { ip: '10.99.10.1', pod: { namespace: 'a', name: 'b' } });
      await expect(lease(p, { ip: '10.99.10.1', dryRun: true })).rejects.toBeInstanceOf(
        AddressInUseError,
      );
      await lease(p);
      await expect(lease(p, { dryRun: true })).rejects.toThrow(/2 of 2 addresses leased/);
    });

    it('reserve and unreserve without a lease', async () => {
      const p = await pool({ cidr: '10.99.11.0/29' });
      const r = await h.store.reserve(p, 'ns/sts/0', '10.99.11.3');
      expect(r).toEqual({ pool: p.name, key: 'ns/sts/0', ip: '10.99.11.3' });
      expect(await h.store.reserve(p, 'ns/sts/0')).toEqual(r);
      await expect(h.store.reserve(p, 'ns/sts/0', '10.99.11.4')).rejects.toBeInstanceOf(
        ReservationExistsError,
      );
      await expect(h.store.reserve(p, 'ns/sts/1', '10.99.11.3')).rejects.toBeInstanceOf(
        AddressInUseError,
      );
      expect((await h.store.stats(p)).leased).toBe(1);
      const dyn = await h.store.reserve(p, 'ns/sts/1');
      expect(dyn.ip).toBe('10.99.11.1');
      const a = await lease(p, { stickyKey: 'ns/sts/0', pod: { namespace: 'ns', name: 'sts-0' } });
      expect(a).toMatchObject({ reused: true });
      expect(a.lease.ip).toBe('10.99.11.3');
      expect(await h.store.unreserve(p, 'ns/sts/1')).toEqual({
        removed: true,
        ip: '10.99.11.1',
        freed: true,
      });
      expect(await h.store.stats(p)).toMatchObject({ leased: 1, reserved: 1 });
    });

    it('a wiped pool is recovering until rebuilt from annotations and marked ready', async () => {
      const p = testPool({ cidr: '10.99.12.0/29' });
      created.push(p);
      expect(await h.store.ensurePool(p, { initialize: false })).toBe('uninitialised');
      expect(await h.store.epoch(p)).toBeUndefined();
      expect(await h.store.ensurePool(p, { initialize: true, withoutEpoch: true })).toBe('created');
      await expect(lease(p)).rejects.toBeInstanceOf(PoolRecoveringError);
      const id = newLeaseId();
      const pod = { namespace: 'db', name: 'pg-0', uid: 'u-pg' };
      const restored = await h.store.restore({
        pool: p,
        leaseId: id,
        ip: '10.99.12.1',
        pod,
        stickyKey: 'db/pg/0',
      });
      expect(restored).toMatchObject({
        id,
        ip: '10.99.12.1',
        state: 'bound',
        uid: 'u-pg',
        stickyKey: 'db/pg/0',
      });
      // Restoring twice is a no-op; a second pod claiming the address is a conflict.
      expect((await h.store.restore({ pool: p, leaseId: id, ip: '10.99.12.1', pod })).id).toBe(id);
      await expect(
        h.store.restore({
          pool: p,
          leaseId: newLeaseId(),
          ip: '10.99.12.1',
          pod: { namespace: 'x', name: 'y' },
        }),
      ).rejects.toBeInstanceOf(AddressInUseError);
      await h.store.restore({
        pool: p,
        leaseId: newLeaseId(),
        ip: '10.99.12.2',
        pod: { namespace: 'a', name: 'b' },
      });
      const epoch = await h.store.markReady(p);
      expect(epoch).not.toBe('');
      expect(await h.store.markReady(p)).toBe(epoch);
      expect(await h.store.ensurePool(p, { initialize: false })).toBe('ready');
      const next = await lease(p);
      expect(['10.99.12.1', '10.99.12.2']).not.toContain(next.lease.ip);
      expect(await h.store.stats(p)).toMatchObject({
        leased: 3,
        bound: 2,
        pending: 1,
        reserved: 1,
      });
      // The restored lease is bound: a pod of the same key never takes it over.
      const pg0 = { stickyKey: 'db/pg/0', pod: { namespace: 'db', name: 'pg-0' } };
      await expect(lease(p, { ...pg0, replacePendingBefore: ANY_AGE })).rejects.toThrow(
        'held by pod db/pg-0',
      );
      expect(await h.store.release(p, id)).toMatchObject({
        released: true,
        keptByReservation: true,
      });
      const sticky = await lease(p, pg0);
      expect(sticky).toMatchObject({ reused: true });
      expect(sticky.lease.ip).toBe('10.99.12.1');
    });

    it('a changed pools file is laid out again keeping every lease; shrinking past a lease is refused', async () => {
      const p = await pool({ cidr: '10.99.13.0/24', ranges: ['10.99.13.10-10.99.13.19'] });
      const a = await lease(p);
      const b = await lease(p, { stickyKey: 'n/s/0', pod: { namespace: 'n', name: 's-0' } });
      const c = await lease(p);
      await h.store.release(p, c.lease.id);
      const grown = reconfigure(p, { cidr: '10.99.13.0/24', ranges: ['10.99.13.5-10.99.13.30'] });
      await expect(lease(grown)).rejects.toBeInstanceOf(LayoutMismatchError);
      expect(await h.store.ensurePool(grown, { initialize: true })).toBe('relaid');
      await expect(lease(p)).rejects.toBeInstanceOf(LayoutMismatchError);
      expect((await h.store.get(grown, a.lease.id))?.ip).toBe('10.99.13.10');
      expect((await h.store.reservations(grown))[0]?.ip).toBe('10.99.13.11');
      expect(await h.store.stats(grown)).toMatchObject({ size: 26, leased: 2 });
      const ips = [];
      for (let i = 0; i < 24; i++) ips.push((await lease(grown)).lease.ip);
      expect(ips).not.toContain('10.99.13.10');
      expect(ips).not.toContain('10.99.13.11');
      expect(ips.at(-1)).toBe('10.99.13.12'); // the released one comes last
      const shrunk = reconfigure(p, { cidr: '10.99.13.0/24', ranges: ['10.99.13.12-10.99.13.30'] });
      const err = await h.store.ensurePool(shrunk, { initialize: true }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PoolShrinkError);
      expect((err as Error).message).toContain(
        'leaves out 7 address(es) still leased or reserved (10.99.13.5, 10.99.13.6',
      );
      expect((await h.store.get(grown, b.lease.id))?.ip).toBe('10.99.13.11');
    });

    it('a retried admission (same request uid) gets the same lease; another request with the id is refused', async () => {
      const p = await pool({ cidr: '10.99.15.0/29' });
      const leaseId = newLeaseId();
      const first = await lease(p, { leaseId, requestUid: 'req-1', attempt: 'a1' });
      const retry = await lease(p, { leaseId, requestUid: 'req-1', attempt: 'a2' });
      expect(retry).toMatchObject({ retried: true });
      expect(retry.lease).toMatchObject({ id: leaseId, ip: first.lease.ip, requestUid: 'req-1' });
      expect(await h.store.stats(p)).toMatchObject({ leased: 1, pending: 1 });
      await expect(lease(p, { leaseId, requestUid: 'req-2' })).rejects.toBeInstanceOf(
        LeaseIdExistsError,
      );
      await expect(lease(p, { leaseId })).rejects.toBeInstanceOf(LeaseIdExistsError);
      // The retry adopted the lease: the first attempt's cleanup frees nothing.
      expect(await h.store.release(p, leaseId, { attempt: 'a1' })).toMatchObject({
        released: false,
        reason: 'attempt-mismatch',
      });
      expect(await h.store.release(p, leaseId, { attempt: 'a2' })).toMatchObject({
        released: true,
        ip: first.lease.ip,
      });
      expect((await h.store.stats(p)).leased).toBe(0);
    });

    it('an edited ip-list moves the reservation to a free address, or names the holder', async () => {
      const p = await pool({ cidr: '10.99.16.0/24' });
      const key = 'ns/kafka/0';
      const pod = { namespace: 'ns', name: 'kafka-0' };
      const a = await lease(p, { stickyKey: key, ip: '10.99.16.50', pod });
      await h.store.release(p, a.lease.id);
      const other = await lease(p, { ip: '10.99.16.70', pod: { namespace: 'x', name: 'y' } });
      await expect(lease(p, { stickyKey: key, ip: '10.99.16.70', pod })).rejects.toThrow(
        'held by pod x/y',
      );
      // Dry run: the same checks, and nothing moves.
      const dry = await lease(p, { stickyKey: key, ip: '10.99.16.60', pod, dryRun: true });
      expect(dry.lease.ip).toBe('10.99.16.60');
      expect((await h.store.reservations(p))[0]?.ip).toBe('10.99.16.50');
      const moved = await lease(p, { stickyKey: key, ip: '10.99.16.60', pod });
      expect(moved).toMatchObject({ movedFrom: '10.99.16.50', reused: false });
      expect(moved.lease.ip).toBe('10.99.16.60');
      expect(await h.store.reservations(p)).toEqual([
        { pool: p.name, key, ip: '10.99.16.60', leaseId: moved.lease.id },
      ]);
      expect(await h.store.stats(p)).toMatchObject({ leased: 2, reserved: 1 });
      // The old address is free again: an exact request for it succeeds.
      await lease(p, { ip: '10.99.16.50', pod: { namespace: 'z', name: 'z' } });
      // A bound lease on the reservation is never moved away from.
      await h.store.bind(p, moved.lease.id, { ...pod, uid: 'u-k0' });
      await expect(
        lease(p, { stickyKey: key, ip: '10.99.16.61', pod, replacePendingBefore: ANY_AGE }),
      ).rejects.toThrow('held by pod ns/kafka-0');
      expect(other.lease.ip).toBe('10.99.16.70');
    });

    it('records are read through the stored layout: a reader with another pools file sees true addresses', async () => {
      const p = await pool({ cidr: '10.99.17.0/24', ranges: ['10.99.17.10-10.99.17.19'] });
      const a = await lease(p);
      const b = await lease(p, { stickyKey: 'n/s/0', pod: { namespace: 'n', name: 's-0' } });
      // Another replica's pools file (not laid out): reads, release and unreserve still agree.
      const other = reconfigure(p, {
        cidr: '10.99.17.0/24',
        ranges: ['10.99.17.100-10.99.17.120'],
      });
      expect((await h.store.leases(other)).map(l => l.ip).sort()).toEqual([
        '10.99.17.10',
        '10.99.17.11',
      ]);
      expect((await h.store.get(other, a.lease.id))?.ip).toBe('10.99.17.10');
      expect((await h.store.reservations(other))[0]?.ip).toBe('10.99.17.11');
      await expect(lease(other)).rejects.toBeInstanceOf(LayoutMismatchError);
      expect(await h.store.release(other, a.lease.id)).toMatchObject({
        released: true,
        ip: '10.99.17.10',
      });
      expect(await h.store.unreserve(other, 'n/s/0')).toMatchObject({
        removed: true,
        ip: '10.99.17.11',
      });
      expect(b.lease.ip).toBe('10.99.17.11');
    });

    describe('reuse cooldown', () => {
      const COOL = 60_000;
      /** Every call at an explicit time, so the suite does not depend on the clock. */
      const T = Date.now();
      const at = (ms: number) => ({ now: T + ms, reuseCooldownMs: COOL });
      const fill = async (p: Pool, n: number) => {
        const out = [];
        for (let i = 0; i < n; i++) out.push((await lease(p, at(0))).lease);
        return out;
      };

      it('a released address rests for the cooldown while others are free, then comes back', async () => {
        const p = await pool({ cidr: '10.97.0.0/29' }); // .1-.6
        const [a, b] = await fill(p, 4);
        await h.store.release(p, a!.id, { now: T + 1_000 });
        await h.store.release(p, b!.id, { now: T + 2_000 });
        // Never-used addresses first, as without a cooldown.
        expect((await lease(p, at(3_000))).lease.ip).toBe('10.97.0.5');
        expect((await lease(p, at(3_000))).lease.ip).toBe('10.97.0.6');
        // Only cooling addresses left: refused, naming how many and when the first is free.
        const err = await lease(p, at(3_000)).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(PoolExhaustedError);
        expect(err).toMatchObject({
          retryable: true,
          leased: 4,
          size: 6,
          cooling: 2,
          nextFreeAt: T + 1_000 + COOL,
          reuseCooldownMs: COOL,
        });
        expect((err as Error).message).toBe(
          `pool "${p.name}" has no free address: 4 of 6 leased, 2 released and cooling down ` +
            `(reuse-cooldown 60s), the first free again at ` +
            `${new Date(T + 1_000 + COOL).toISOString()} (in 58s)`,
        );
        // The same pool without a cooldown hands it out at once (the cooldown is per call).
        expect((await lease(p, { dryRun: true, now: T + 3_000 })).lease.ip).toBe(a!.ip);
        // One ms early is still too early; at the time the first is free, the second still rests.
        await expect(lease(p, at(1_000 + COOL - 1))).rejects.toThrow('(in 1s)');
        expect((await lease(p, at(1_000 + COOL))).lease.ip).toBe(a!.ip);
        await expect(lease(p, at(1_000 + COOL))).rejects.toMatchObject({
          cooling: 1,
          nextFreeAt: T + 2_000 + COOL,
        });
        expect((await lease(p, at(2_000 + COOL))).lease.ip).toBe(b!.ip);
        // Every address held: the plain message, not retryable.
        const full = await lease(p, at(2_000 + COOL)).catch((e: unknown) => e);
        expect(full).toMatchObject({ retryable: false, cooling: 0, nextFreeAt: undefined });
        expect((full as Error).message).toBe(
          `pool "${p.name}" is exhausted: 6 of 6 addresses leased`,
        );
      });

      it('released addresses come back oldest first, by release time', async () => {
        const p = await pool({ cidr: '10.97.1.0/29' });
        const leases = await fill(p, 6);
        const order = [3, 0, 5, 1];
        for (const [n, i] of order.entries()) {
          await h.store.release(p, leases[i]!.id, { now: T + 1_000 * (n + 1) });
        }
        const again = [];
        for (let n = 0; n < order.length; n++) again.push((await lease(p, at(10 * COOL))).lease.ip);
        expect(again).toEqual(order.map(i => leases[i]!.ip));
      });

      it('stats count cooling addresses apart: free is what may be handed out now', async () => {
        const p = await pool({ cidr: '10.97.2.0/29' });
        const [a, b] = await fill(p, 3);
        await h.store.release(p, a!.id, { now: T + 1_000 });
        await h.store.release(p, b!.id, { now: T + 5_000 });
        expect(await h.store.stats(p, at(6_000))).toMatchObject({
          size: 6,
          leased: 1,
          cooling: 2,
          free: 3,
        });
        expect(await h.store.stats(p, at(1_000 + COOL))).toMatchObject({ cooling: 1, free: 4 });
        expect(await h.store.stats(p, at(5_000 + COOL))).toMatchObject({ cooling: 0, free: 5 });
        // Without a cooldown nothing cools.
        expect(await h.store.stats(p)).toMatchObject({ cooling: 0, free: 5 });
      });

      it('an exact address and a sticky reservation are given while cooling; a dynamic reserve is not', async () => {
        const p = await pool({ cidr: '10.97.3.0/30' }); // .1 .2
        const pod = { namespace: 'db', name: 'pg-0' };
        const a = await lease(p, { ...at(0), ip: '10.97.3.1', pod });
        const s = await lease(p, { ...at(0), stickyKey: 'db/web/0', pod });
        await h.store.release(p, a.lease.id, { now: T + 1_000 });
        await h.store.release(p, s.lease.id, { now: T + 1_000 });
        // The user named it: a static-ip (or ip-list entry) does not wait.
        const exact = await lease(p, { ...at(2_000), ip: '10.97.3.1', pod });
        expect(exact.lease.ip).toBe('10.97.3.1');
        await h.store.release(p, exact.lease.id, { now: T + 3_000 });
        // The sticky key's own address was never given up.
        const again = await lease(p, { ...at(3_000), stickyKey: 'db/web/0', pod });
        expect(again).toMatchObject({ reused: true });
        expect(again.lease.ip).toBe(s.lease.ip);
        // A new key (or `podlease reserve` without --ip) takes the next free address: none yet.
        await expect(h.store.reserve(p, 'db/web/1', undefined, at(3_000))).rejects.toMatchObject({
          cooling: 1,
          nextFreeAt: T + 3_000 + COOL,
        });
        expect(await h.store.reserve(p, 'db/web/1', '10.97.3.1', at(3_000))).toMatchObject({
          ip: '10.97.3.1',
        });
      });

      it('unreserve and a moved reservation start the cooldown of the address they give back', async () => {
        const p = await pool({ cidr: '10.97.4.0/29' });
        const pod = { namespace: 'ns', name: 'kafka-0' };
        await fill(p, 3); // .1-.3
        const k = await lease(p, { ...at(0), stickyKey: 'ns/kafka/0', ip: '10.97.4.4', pod });
        await h.store.reserve(p, 'ns/kafka/1', '10.97.4.5', at(0));
        expect(await h.store.unreserve(p, 'ns/kafka/1', T + 1_000)).toMatchObject({ freed: true });
        const moved = await lease(p, {
          ...at(2_000),
          stickyKey: 'ns/kafka/0',
          ip: '10.97.4.6',
          pod,
          replacePendingBefore: ANY_AGE,
        });
        expect(moved).toMatchObject({ movedFrom: '10.97.4.4', replaced: k.lease.id });
        expect(await h.store.stats(p, at(2_000))).toMatchObject({ cooling: 2, free: 0 });
        await expect(lease(p, at(2_000))).rejects.toMatchObject({
          cooling: 2,
          nextFreeAt: T + 1_000 + COOL,
        });
        expect((await lease(p, at(1_000 + COOL))).lease.ip).toBe('10.97.4.5');
        expect((await lease(p, at(2_000 + COOL))).lease.ip).toBe('10.97.4.4');
      });

      it('a relayout keeps the release times: cooling addresses still rest, in the same order', async () => {
        const p = await pool({ cidr: '10.97.5.0/24', ranges: ['10.97.5.10-10.97.5.13'] });
        const leases = await fill(p, 4);
        await h.store.release(p, leases[2]!.id, { now: T + 1_000 });
        await h.store.release(p, leases[0]!.id, { now: T + 2_000 });
        const grown = reconfigure(p, { cidr: '10.97.5.0/24', ranges: ['10.97.5.8-10.97.5.13'] });
        expect(await h.store.ensurePool(grown, { initialize: true })).toBe('relaid');
        expect(await h.store.stats(grown, at(3_000))).toMatchObject({
          size: 6,
          leased: 2,
          cooling: 2,
          free: 2,
        });
        const fresh = [(await lease(grown, at(3_000))).lease.ip];
        fresh.push((await lease(grown, at(3_000))).lease.ip);
        expect(fresh.sort()).toEqual(['10.97.5.8', '10.97.5.9']);
        await expect(lease(grown, at(3_000))).rejects.toMatchObject({
          cooling: 2,
          nextFreeAt: T + 1_000 + COOL,
        });
        expect((await lease(grown, at(10 * COOL))).lease.ip).toBe(leases[2]!.ip);
        expect((await lease(grown, at(10 * COOL))).lease.ip).toBe(leases[0]!.ip);
      });
    });

    describe('StatefulSet retention policies', () => {
      it('set, replace, list and delete; kept apart per pool', async () => {
        const p = await pool({ cidr: '10.96.0.0/29' });
        const q = await pool({ cidr: '10.96.1.0/29' });
        expect(await h.store.policies(p)).toEqual(new Map());
        await h.store.setPolicy(p, 'db/pg', { whenScaled: 'Delete', whenDeleted: 'Retain' });
        await h.store.setPolicy(p, 'web/kafka', { whenScaled: 'Retain', whenDeleted: 'Delete' });
        await h.store.setPolicy(q, 'db/pg', { whenScaled: 'Retain', whenDeleted: 'Retain' });
        await h.store.setPolicy(p, 'db/pg', { whenScaled: 'Retain', whenDeleted: 'Retain' });
        expect(await h.store.policies(p)).toEqual(
          new Map([
            ['db/pg', { whenScaled: 'Retain', whenDeleted: 'Retain' }],
            ['web/kafka', { whenScaled: 'Retain', whenDeleted: 'Delete' }],
          ]),
        );
        expect(await h.store.deletePolicy(p, 'db/pg')).toBe(true);
        expect(await h.store.deletePolicy(p, 'db/pg')).toBe(false);
        expect([...(await h.store.policies(p)).keys()]).toEqual(['web/kafka']);
        expect(await h.store.policies(q)).toEqual(
          new Map([['db/pg', { whenScaled: 'Retain', whenDeleted: 'Retain' }]]),
        );
      });

      it('are not part of the address state: kept without it and across a relayout', async () => {
        // A pool with no state yet (before a rebuild) already takes policies.
        const p = testPool({ cidr: '10.96.2.0/29' });
        created.push(p);
        await h.store.setPolicy(p, 'db/pg', { whenScaled: 'Delete', whenDeleted: 'Retain' });
        expect(await h.store.ensurePool(p, { initialize: true, withoutEpoch: true })).toBe(
          'created',
        );
        await h.store.markReady(p);
        const grown = reconfigure(p, { cidr: '10.96.2.0/28' });
        expect(await h.store.ensurePool(grown, { initialize: true })).toBe('relaid');
        expect(await h.store.policies(grown)).toEqual(
          new Map([['db/pg', { whenScaled: 'Delete', whenDeleted: 'Retain' }]]),
        );
      });
    });

    it('a new pool is reconciled on the store history; markReconciled compares and sets', async () => {
      const p = await pool({ cidr: '10.99.15.0/28' });
      const before = await h.store.history(p);
      expect(before.current).not.toBe('');
      expect(before.reconciledOn).toBe(before.current);
      expect(await h.store.markReconciled(p, before.current)).toBe(true);
      // Another history than the server's: nothing confirmed, nothing changed.
      expect(await h.store.markReconciled(p, `${before.current}-other`)).toBe(false);
      expect(await h.store.history(p)).toEqual(before);
      await lease(p);
      const none = testPool({ cidr: '10.99.16.0/28' });
      await expect(h.store.history(none)).rejects.toBeInstanceOf(PoolRecoveringError);
      await expect(h.store.markReconciled(none, before.current)).rejects.toBeInstanceOf(
        PoolRecoveringError,
      );
    });

    describe('snapshot and report (the pool map)', () => {
      const COOL = 60_000;
      const T = Date.now();

      it('one read gives leases, reservations and cooling addresses, sorted, with the stats', async () => {
        const p = await pool({ cidr: '10.95.0.0/28', gateway: '10.95.0.1' }); // .2-.14
        const at = { now: T, reuseCooldownMs: COOL };
        const a = await lease(p, { ...at, pod: { namespace: 'web', name: 'a' } }); // .2
        const b = await lease(p, { ...at, pod: { namespace: 'web', name: 'b' } }); // .3
        await h.store.bind(p, b.lease.id, { namespace: 'web', name: 'b', uid: 'ub' }, T + 5);
        await h.store.reserve(p, 'db/pg/1', '10.95.0.9', at);
        const sticky = await lease(p, {
          ...at,
          pod: { namespace: 'db', name: 'pg-0' },
          stickyKey: 'db/pg/0',
          ip: '10.95.0.7',
        });
        const gone = await lease(p, at); // .4
        await h.store.release(p, gone.lease.id, { now: T + 10 });
        await h.store.release(p, a.lease.id, { now: T + 20 });
        const snap = await h.store.snapshot(p, { now: T + 1_000, reuseCooldownMs: COOL });
        expect(snap).toMatchObject({
          pool: p.name,
          layoutHash: p.layout.hash,
          at: T + 1_000,
          reuseCooldownMs: COOL,
        });
        expect(snap.epoch).toBe(await h.store.epoch(p));
        expect(snap.leases.map(l => [l.ip, l.index, l.state, l.name])).toEqual([
          ['10.95.0.3', 1, 'bound', 'b'],
          ['10.95.0.7', 5, 'pending', 'pg-0'],
        ]);
        expect(snap.leases[0]).toMatchObject({ id: b.lease.id, uid: 'ub', boundAt: T + 5 });
        expect(snap.leases[1]).toMatchObject({ id: sticky.lease.id, stickyKey: 'db/pg/0' });
        expect(snap.reservations).toEqual([
          { pool: p.name, key: 'db/pg/0', ip: '10.95.0.7', index: 5, leaseId: sticky.lease.id },
          { pool: p.name, key: 'db/pg/1', ip: '10.95.0.9', index: 7, leaseId: undefined },
        ]);
        expect(snap.cooling).toEqual([
          { ip: '10.95.0.4', index: 2, releasedAt: T + 10 },
          { ip: '10.95.0.2', index: 0, releasedAt: T + 20 },
        ]);
        expect(snap.stats).toEqual(
          await h.store.stats(p, { now: T + 1_000, reuseCooldownMs: COOL }),
        );
        expect(snap.stats).toMatchObject({ size: 13, leased: 3, cooling: 2, free: 8 });
        // Past the cooldown, or without one, nothing cools.
        const later = await h.store.snapshot(p, { now: T + 20 + COOL, reuseCooldownMs: COOL });
        expect(later.cooling).toEqual([]);
        expect((await h.store.snapshot(p)).cooling).toEqual([]);
        expect(later.stats.free).toBe(10);
      });

      it('reads through the stored layout, and refuses a pool with no state', async () => {
        const p = await pool({ cidr: '10.95.1.0/29' });
        const a = await lease(p, { ip: '10.95.1.5' });
        const other = reconfigure(p, { cidr: '10.95.1.0/28' });
        const snap = await h.store.snapshot(other);
        expect(snap.layoutHash).toBe(p.layout.hash);
        expect(snap.leases.map(l => [l.id, l.ip])).toEqual([[a.lease.id, '10.95.1.5']]);
        const none = testPool({ cidr: '10.95.2.0/29' });
        await expect(h.store.snapshot(none)).rejects.toBeInstanceOf(PoolRecoveringError);
      });

      it('saveReport keeps the last report per pool, apart from the address state', async () => {
        const p = await pool({ cidr: '10.95.3.0/29' });
        const q = await pool({ cidr: '10.95.4.0/29' });
        expect(await h.store.report(p)).toBeUndefined();
        await h.store.saveReport(p, '{"at":1}');
        await h.store.saveReport(p, '{"at":2}');
        await h.store.saveReport(q, '{"at":3}');
        expect(await h.store.report(p)).toBe('{"at":2}');
        expect(await h.store.report(q)).toBe('{"at":3}');
        const grown = reconfigure(p, { cidr: '10.95.3.0/28' });
        expect(await h.store.ensurePool(grown, { initialize: true })).toBe('relaid');
        expect(await h.store.report(grown)).toBe('{"at":2}');
      });
    });

    it('random lease/release sequences never give one address to two holders', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.oneof(fc.constant('lease'), fc.constant('sticky'), fc.nat(40)), {
            maxLength: 60,
          }),
          async ops => {
            const p = await pool({ cidr: '10.99.14.0/28' });
            const live: { id: string; ip: string }[] = [];
            for (const op of ops) {
              if (typeof op === 'number') {
                const victim = live.splice(op % Math.max(live.length, 1), 1)[0];
                if (victim !== undefined) await h.store.release(p, victim.id);
                continue;
              }
              const extra =
                op === 'sticky'
                  ? { stickyKey: `n/s/${live.length % 3}`, replacePendingBefore: ANY_AGE }
                  : {};
              try {
                const a = await lease(p, extra);
                const i = live.findIndex(l => l.id === a.replaced);
                if (i >= 0) live.splice(i, 1);
                live.push({ id: a.lease.id, ip: a.lease.ip });
              } catch (e) {
                expect(e).toBeInstanceOf(PoolExhaustedError);
              }
            }
            const leases = await h.store.leases(p);
            const ips = leases.map(l => l.ip);
            expect(new Set(ips).size).toBe(ips.length);
            expect(leases.map(l => l.id).sort()).toEqual(live.map(l => l.id).sort());
            const stats = await h.store.stats(p);
            const reserved = await h.store.reservations(p);
            const held = new Set([...ips, ...reserved.map(r => r.ip)]);
            expect(stats.leased).toBe(held.size);
            expect(stats.free).toBe(14 - held.size);
            await h.drop(p);
          },
        ),
        { numRuns: 25 },
      );
    });
  });
};
