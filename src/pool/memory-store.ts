/**
 * In-process lease store: the embedded default of `podlease serve` and the fake of the unit
 * tests. Same semantics as the Lua scripts, enforced by one contract suite. Single replica only:
 * nothing is shared between processes and nothing survives a restart.
 */
import { randomUUID } from 'node:crypto';
import { indexOf, ipOf } from './addressing.js';
import type { Pool } from './pools-file.js';
import {
  AddressInUseError,
  LayoutMismatchError,
  LeaseConflictError,
  LeaseIdExistsError,
  LeaseNotFoundError,
  PoolExhaustedError,
  PoolRecoveringError,
  PoolShrinkError,
  ReservationExistsError,
  type CoolingDown,
  type Holder,
} from './errors.js';
import { isRetentionAction } from './annotations.js';
import { indexToIp, ipToIndex, type Layout } from './layout.js';
import type {
  AllocateRequest,
  Allocation,
  CooldownOptions,
  CoolingAddress,
  EnsureOptions,
  EnsureResult,
  LeaseRecord,
  LeaseState,
  LeaseStore,
  PodRef,
  PoolSnapshot,
  PoolStats,
  ReleaseOptions,
  ReleaseResult,
  Reservation,
  RestoreRequest,
  RetentionPolicy,
  UnreserveResult,
  StoreHistory,
} from './store.js';

interface Rec {
  id: string;
  index: number;
  state: LeaseState;
  namespace: string;
  name?: string | undefined;
  generateName?: string | undefined;
  uid?: string | undefined;
  stickyKey?: string | undefined;
  createdAt: number;
  expiresAt?: number | undefined;
  boundAt?: number | undefined;
  requestUid?: string | undefined;
  attempt?: string | undefined;
}

/** The reuse cooldown (ms, 0 for none) and the time it is measured at. */
interface Cooldown {
  readonly ms: number;
  readonly now: number;
}

const cooldownOf = (ms: number | undefined, now: number | undefined): Cooldown => ({
  ms: ms === undefined || !(ms > 0) ? 0 : Math.ceil(ms),
  now: now ?? Date.now(),
});

/** One pool's state: the same structures as the Redis keys (see lua/allocate-8.lua). */
class PoolState {
  layout: Layout;
  epoch: string | undefined;
  /** Bit per index: ever handed out (held, or released and waiting in `released`). */
  dirty: Uint8Array;
  cursor = -1;
  held = 0;
  /** Every address has been handed out once: skip the scan (only a new layout adds fresh ones). */
  noFresh = false;
  /**
   * Free, previously used indexes -> release time (ms), oldest first (a Map keeps insertion
   * order; `free` keeps it sorted by time, as the Redis zset is).
   */
  released = new Map<number, number>();
  /** The latest release time `released` has seen (entries taken since may have gone). */
  newestRelease = -Infinity;
  readonly leases = new Map<string, Rec>();
  readonly byIndex = new Map<number, string>();
  readonly sticky = new Map<string, number>();
  readonly resByIndex = new Map<number, string>();

  constructor(layout: Layout, epoch: string | undefined) {
    this.layout = layout;
    this.epoch = epoch;
    this.dirty = new Uint8Array(Math.ceil(layout.size / 8));
  }

  isDirty(i: number): boolean {
    return ((this.dirty[i >> 3] ?? 0) & (1 << (i & 7))) !== 0;
  }

  setDirty(i: number): void {
    this.dirty[i >> 3] = (this.dirty[i >> 3] ?? 0) | (1 << (i & 7));
  }

  isHeld(i: number): boolean {
    return this.byIndex.has(i) || this.resByIndex.has(i);
  }

  /**
   * First never-used index after the cursor, wrapping; else the oldest released one once it has
   * rested `cooldown.ms`; else, when released ones still rest, how many and until when.
   */
  nextFree(cooldown: Cooldown): { index: number } | { cooling: number; nextFreeAt: number } {
    const size = this.layout.size;
    if (!this.noFresh) {
      const ahead = this.findClear(this.cursor + 1, size);
      const fresh = ahead ?? this.findClear(0, Math.min(this.cursor + 1, size));
      if (fresh !== undefined) return { index: fresh };
      this.noFresh = true;
    }
    const oldest = this.released.entries().next();
    if (oldest.done === true) return { cooling: 0, nextFreeAt: 0 };
    const [index, releasedAt] = oldest.value;
    const freeAt = releasedAt + cooldown.ms;
    // Oldest first: when the oldest still rests, every released address does.
    if (cooldown.ms > 0 && freeAt > cooldown.now) {
      return { cooling: this.released.size, nextFreeAt: freeAt };
    }
    return { index };
  }

  /** Released addresses still resting at `cooldown.now`. */
  cooling(cooldown: Cooldown): number {
    if (cooldown.ms <= 0) return 0;
    let n = 0;
    for (const t of this.released.values()) if (t > cooldown.now - cooldown.ms) n++;
    return n;
  }

  /** First clear bit in [from, to), skipping whole bytes that are full (BITPOS in Redis). */
  findClear(from: number, to: number): number | undefined {
    let i = from;
    while (i < to) {
      if ((i & 7) === 0 && this.dirty[i >> 3] === 0xff) {
        i += 8;
        continue;
      }
      if (!this.isDirty(i)) return i;
      i++;
    }
    return undefined;
  }

  /** Marks a free index held. */
  take(i: number, moveCursor: boolean): void {
    if (this.isDirty(i)) {
      this.released.delete(i);
    } else {
      this.setDirty(i);
      if (moveCursor) this.cursor = i;
    }
    this.held++;
  }

  /** Returns a held index to the pool, released at `now`: behind every address released before. */
  free(i: number, now: number): void {
    this.released.set(i, now);
    // Earlier than a release before it (a clock stepped back, an injected `now`): sort again.
    if (now < this.newestRelease) {
      this.released = new Map([...this.released].sort((a, b) => a[1] - b[1]));
    }
    this.newestRelease = Math.max(this.newestRelease, now);
    this.held--;
  }

  holderOf(i: number): Holder | undefined {
    const id = this.byIndex.get(i);
    const rec = id === undefined ? undefined : this.leases.get(id);
    if (rec !== undefined) {
      return {
        namespace: rec.namespace,
        name: rec.name,
        generateName: rec.generateName,
        state: rec.state,
        leaseStickyKey: rec.stickyKey,
      };
    }
    const key = this.resByIndex.get(i);
    return key === undefined ? undefined : { namespace: key.split('/')[0] ?? '', stickyKey: key };
  }
}

const samePod = (rec: Rec, pod: PodRef): boolean =>
  rec.namespace === pod.namespace &&
  rec.name !== undefined &&
  rec.name !== '' &&
  rec.name === pod.name;

export class MemoryLeaseStore implements LeaseStore {
  readonly kind = 'memory' as const;
  readonly #pools = new Map<string, PoolState>();
  /** Retention policies by pool, then StatefulSet: apart from the address state, as in Redis. */
  readonly #policies = new Map<string, Map<string, RetentionPolicy>>();
  /** The last reconcile report by pool: apart from the address state, as in Redis. */
  readonly #reports = new Map<string, string>();
  readonly #history = randomUUID();

  ensurePool(pool: Pool, options: EnsureOptions): Promise<EnsureResult> {
    return run(() => this.#ensure(pool, options));
  }

  #ensure(pool: Pool, options: EnsureOptions): EnsureResult {
    const st = this.#pools.get(pool.name);
    const epoch = options.withoutEpoch === true ? undefined : randomUUID();
    if (st === undefined) {
      if (!options.initialize) return 'uninitialised';
      this.#pools.set(pool.name, new PoolState(pool.layout, epoch));
      return 'created';
    }
    if (st.layout.hash !== pool.layout.hash) {
      relayout(st, pool);
      return 'relaid';
    }
    if (st.epoch === undefined) {
      if (!options.initialize || epoch === undefined) return 'uninitialised';
      st.epoch = epoch;
      return 'created';
    }
    return 'ready';
  }

  allocate(req: AllocateRequest): Promise<Allocation> {
    return run(() => {
      const st = this.#ready(req.pool);
      const existing = st.leases.get(req.leaseId);
      if (existing !== undefined) return retry(st, req, existing);
      const now = req.now ?? Date.now();
      const pick = pickIndex(st, req, cooldownOf(req.reuseCooldownMs, now));
      const rec: Rec = {
        id: req.leaseId,
        index: pick.index,
        state: 'pending',
        namespace: req.pod.namespace,
        name: req.pod.name,
        generateName: req.pod.generateName,
        stickyKey: req.stickyKey,
        createdAt: now,
        expiresAt: now + req.ttlMs,
        requestUid: req.requestUid,
        attempt: req.attempt,
      };
      const dryRun = req.dryRun === true;
      if (!dryRun) commitLease(st, rec, pick);
      return {
        lease: toRecord(st, req.pool, rec),
        reused: pick.reused,
        replaced: pick.replaced,
        dryRun,
        retried: false,
        movedFrom: pick.movedFrom === undefined ? undefined : ipOf(req.pool, pick.movedFrom),
      };
    });
  }

  bind(
    pool: Pool,
    leaseId: string,
    pod: { namespace: string; name: string; uid: string },
    now?: number,
  ): Promise<LeaseRecord> {
    return run(() => {
      const st = this.#state(pool);
      const rec = st.leases.get(leaseId);
      if (rec === undefined) throw new LeaseNotFoundError(pool.name, leaseId);
      if (rec.state === 'bound' && rec.uid !== pod.uid) {
        throw new LeaseConflictError(
          pool.name,
          leaseId,
          rec.uid ?? '',
          `${rec.namespace}/${rec.name ?? ''}`,
        );
      }
      if (rec.state === 'pending') {
        rec.state = 'bound';
        rec.uid = pod.uid;
        rec.name = pod.name;
        rec.namespace = pod.namespace;
        rec.boundAt = now ?? Date.now();
        rec.expiresAt = undefined;
      }
      return toRecord(st, pool, rec);
    });
  }

  release(pool: Pool, leaseId: string, options: ReleaseOptions = {}): Promise<ReleaseResult> {
    return run(() => {
      const st = this.#state(pool);
      const rec = st.leases.get(leaseId);
      if (rec === undefined)
        return { released: false, keptByReservation: false, reason: 'not-found' };
      if (options.onlyIfPending === true && rec.state !== 'pending') {
        return { released: false, keptByReservation: false, reason: 'not-pending' };
      }
      if (options.uid !== undefined && rec.state === 'bound' && rec.uid !== options.uid) {
        return { released: false, keptByReservation: false, reason: 'uid-mismatch' };
      }
      if (options.attempt !== undefined && rec.attempt !== options.attempt) {
        return { released: false, keptByReservation: false, reason: 'attempt-mismatch' };
      }
      st.leases.delete(leaseId);
      // A record whose address is held by another lease id frees nothing (it was void already).
      if (st.byIndex.get(rec.index) !== leaseId) {
        return { released: false, keptByReservation: false, reason: 'not-found' };
      }
      st.byIndex.delete(rec.index);
      const kept = st.resByIndex.has(rec.index);
      if (!kept) st.free(rec.index, options.now ?? Date.now());
      return { released: true, ip: indexToIp(st.layout, rec.index), keptByReservation: kept };
    });
  }

  expired(pool: Pool, now: number, limit = 1000): Promise<LeaseRecord[]> {
    return run(() => {
      const st = this.#state(pool);
      return [...st.leases.values()]
        .filter(r => r.state === 'pending' && (r.expiresAt ?? Infinity) <= now)
        .sort((a, b) => (a.expiresAt ?? 0) - (b.expiresAt ?? 0))
        .slice(0, limit)
        .map(r => toRecord(st, pool, r));
    });
  }

  reserve(
    pool: Pool,
    key: string,
    ip?: string,
    options: CooldownOptions = {},
  ): Promise<Reservation> {
    return run(() => {
      const st = this.#ready(pool);
      const existing = st.sticky.get(key);
      if (existing !== undefined) {
        const have = ipOf(pool, existing);
        if (ip !== undefined && indexOf(pool, ip) !== existing) {
          throw new ReservationExistsError(pool.name, key, have);
        }
        return { pool: pool.name, key, ip: have, leaseId: st.byIndex.get(existing) };
      }
      const cooldown = cooldownOf(options.reuseCooldownMs, options.now);
      const index =
        ip === undefined ? dynamicIndex(st, pool, cooldown) : exactFreeIndex(st, pool, ip);
      st.take(index, ip === undefined);
      st.sticky.set(key, index);
      st.resByIndex.set(index, key);
      return { pool: pool.name, key, ip: ipOf(pool, index) };
    });
  }

  unreserve(pool: Pool, key: string, now?: number): Promise<UnreserveResult> {
    return run(() => {
      const st = this.#state(pool);
      const index = st.sticky.get(key);
      if (index === undefined) return { removed: false, freed: false };
      st.sticky.delete(key);
      st.resByIndex.delete(index);
      const freed = !st.byIndex.has(index);
      if (freed) st.free(index, now ?? Date.now());
      return { removed: true, ip: indexToIp(st.layout, index), freed };
    });
  }

  get(pool: Pool, leaseId: string): Promise<LeaseRecord | undefined> {
    return run(() => {
      const st = this.#state(pool);
      const rec = st.leases.get(leaseId);
      return rec === undefined ? undefined : toRecord(st, pool, rec);
    });
  }

  leases(pool: Pool): Promise<LeaseRecord[]> {
    return run(() => {
      const st = this.#state(pool);
      return [...st.leases.values()].map(r => toRecord(st, pool, r));
    });
  }

  reservations(pool: Pool): Promise<Reservation[]> {
    return run(() => {
      const st = this.#state(pool);
      return [...st.sticky.entries()].map(([key, index]) => ({
        pool: pool.name,
        key,
        ip: indexToIp(st.layout, index) ?? `?index ${index}`,
        leaseId: st.byIndex.get(index),
      }));
    });
  }

  stats(pool: Pool, options: CooldownOptions = {}): Promise<PoolStats> {
    return run(() =>
      statsOf(pool, this.#state(pool), cooldownOf(options.reuseCooldownMs, options.now)),
    );
  }

  snapshot(pool: Pool, options: CooldownOptions = {}): Promise<PoolSnapshot> {
    return run(() => {
      const st = this.#state(pool);
      const cooldown = cooldownOf(options.reuseCooldownMs, options.now);
      const ipAt = (index: number): string => indexToIp(st.layout, index) ?? `?index ${index}`;
      const cooling: CoolingAddress[] = [];
      if (cooldown.ms > 0) {
        for (const [index, releasedAt] of st.released) {
          if (releasedAt > cooldown.now - cooldown.ms) {
            cooling.push({ ip: ipAt(index), index, releasedAt });
          }
        }
      }
      return {
        pool: pool.name,
        layoutHash: st.layout.hash,
        epoch: st.epoch,
        at: cooldown.now,
        reuseCooldownMs: cooldown.ms,
        stats: statsOf(pool, st, cooldown),
        leases: [...st.leases.values()]
          .sort((a, b) => a.index - b.index)
          .map(r => ({ ...toRecord(st, pool, r), index: r.index })),
        reservations: [...st.sticky.entries()]
          .sort((a, b) => a[1] - b[1])
          .map(([key, index]) => ({
            pool: pool.name,
            key,
            ip: ipAt(index),
            leaseId: st.byIndex.get(index),
            index,
          })),
        cooling,
      };
    });
  }

  saveReport(pool: Pool, json: string): Promise<void> {
    return run(() => {
      this.#reports.set(pool.name, json);
    });
  }

  report(pool: Pool): Promise<string | undefined> {
    return run(() => this.#reports.get(pool.name));
  }

  restore(req: RestoreRequest): Promise<LeaseRecord> {
    return run(() => {
      const st = this.#laidOut(req.pool);
      const index = indexOf(req.pool, req.ip);
      const known = st.leases.get(req.leaseId);
      if (known !== undefined && known.index === index) return toRecord(st, req.pool, known);
      checkRestorable(st, req, index);
      if (!st.isHeld(index)) st.take(index, false);
      if (req.stickyKey !== undefined) {
        st.sticky.set(req.stickyKey, index);
        st.resByIndex.set(index, req.stickyKey);
      }
      const now = req.now ?? Date.now();
      const rec: Rec = {
        id: req.leaseId,
        index,
        state: 'bound',
        namespace: req.pod.namespace,
        name: req.pod.name,
        generateName: req.pod.generateName,
        uid: req.pod.uid,
        stickyKey: req.stickyKey,
        createdAt: now,
        boundAt: now,
      };
      st.leases.set(rec.id, rec);
      st.byIndex.set(index, rec.id);
      return toRecord(st, req.pool, rec);
    });
  }

  epoch(pool: Pool): Promise<string | undefined> {
    return Promise.resolve(this.#pools.get(pool.name)?.epoch);
  }

  markReady(pool: Pool): Promise<string> {
    return run(() => {
      const st = this.#state(pool);
      st.epoch ??= randomUUID();
      return st.epoch;
    });
  }

  /** This process is the memory store's one history: it never fails over, and a restart starts empty. */
  history(pool: Pool): Promise<StoreHistory> {
    return run(() => {
      this.#state(pool);
      return { current: this.#history, reconciledOn: this.#history };
    });
  }

  markReconciled(pool: Pool, history: string): Promise<boolean> {
    return run(() => {
      this.#state(pool);
      return history === this.#history;
    });
  }

  setPolicy(pool: Pool, statefulSet: string, policy: RetentionPolicy): Promise<void> {
    return run(() => {
      if (!isRetentionAction(policy.whenScaled) || !isRetentionAction(policy.whenDeleted)) {
        throw new Error(`retention policy of ${statefulSet}: not Retain or Delete`);
      }
      let byName = this.#policies.get(pool.name);
      if (byName === undefined) {
        byName = new Map();
        this.#policies.set(pool.name, byName);
      }
      byName.set(statefulSet, { whenScaled: policy.whenScaled, whenDeleted: policy.whenDeleted });
    });
  }

  deletePolicy(pool: Pool, statefulSet: string): Promise<boolean> {
    return run(() => this.#policies.get(pool.name)?.delete(statefulSet) ?? false);
  }

  policies(pool: Pool): Promise<ReadonlyMap<string, RetentionPolicy>> {
    return run(() => new Map(this.#policies.get(pool.name)));
  }

  ping(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * The pool's state for reads, bind, release and unreserve: these work by lease id or key, so
   * they work whatever pools file the caller has (indexes are read through the stored layout).
   */
  #state(pool: Pool): PoolState {
    const st = this.#pools.get(pool.name);
    if (st === undefined) throw new PoolRecoveringError(pool.name);
    return st;
  }

  /** The pool's state for taking an address: laid out from the caller's pools file. */
  #laidOut(pool: Pool): PoolState {
    const st = this.#state(pool);
    if (st.layout.hash !== pool.layout.hash) throw new LayoutMismatchError(pool.name);
    return st;
  }

  /** The pool's state for allocation: laid out from this pools file, and the epoch set. */
  #ready(pool: Pool): PoolState {
    const st = this.#laidOut(pool);
    if (st.epoch === undefined) throw new PoolRecoveringError(pool.name);
    return st;
  }
}

interface Pick {
  index: number;
  /** The index is already held: by this sticky key's reservation, or by a lease being replaced. */
  held: boolean;
  /** The index comes from the next-fit scan: the cursor moves to it. */
  dynamic: boolean;
  reused: boolean;
  replaced?: string | undefined;
  /** The sticky reservation moves away from this index (an edited ip-list or static-ip). */
  movedFrom?: number | undefined;
}

/** A lease id that exists: the same lease for a retry of the same request, else refused. */
const retry = (st: PoolState, req: AllocateRequest, rec: Rec): Allocation => {
  if (req.requestUid === undefined || rec.requestUid !== req.requestUid) {
    throw new LeaseIdExistsError(req.pool.name, req.leaseId);
  }
  if (req.dryRun !== true && req.attempt !== undefined) rec.attempt = req.attempt;
  return {
    lease: toRecord(st, req.pool, rec),
    reused: rec.stickyKey !== undefined,
    replaced: undefined,
    dryRun: req.dryRun === true,
    retried: true,
  };
};

/**
 * Whether the lease `holderId` may be replaced by this request: never when bound; when pending
 * only with `replacePendingBefore` and created by then, and only if it was made for this sticky
 * key (`forKey`) or for this very pod name.
 */
const replaceable = (st: PoolState, req: AllocateRequest, holderId: string, forKey: boolean) => {
  const h = st.leases.get(holderId);
  if (h === undefined) return true;
  const before = req.replacePendingBefore;
  if (h.state !== 'pending' || before === undefined || h.createdAt > before) return false;
  if (forKey) return h.stickyKey === req.stickyKey;
  return samePod(h, req.pod);
};

const inUse = (st: PoolState, req: AllocateRequest, index: number): AddressInUseError =>
  new AddressInUseError(
    req.pool.name,
    indexToIp(st.layout, index) ?? req.ip ?? '',
    st.holderOf(index) ?? { namespace: '' },
  );

const pickIndex = (st: PoolState, req: AllocateRequest, cooldown: Cooldown): Pick => {
  const key = req.stickyKey;
  const reservedIndex = key === undefined ? undefined : st.sticky.get(key);
  if (reservedIndex !== undefined) return stickyPick(st, req, reservedIndex);
  if (req.ip !== undefined) return exactPick(st, req, req.ip);
  return { index: dynamicIndex(st, req.pool, cooldown), held: false, dynamic: true, reused: false };
};

/** A sticky key with a reservation: the same address, or the reservation moves to `req.ip`. */
const stickyPick = (st: PoolState, req: AllocateRequest, reservedIndex: number): Pick => {
  const holderId = st.byIndex.get(reservedIndex);
  if (holderId !== undefined && !replaceable(st, req, holderId, true)) {
    throw inUse(st, req, reservedIndex);
  }
  const wanted = req.ip === undefined ? undefined : indexOf(req.pool, req.ip);
  if (wanted === undefined || wanted === reservedIndex) {
    return { index: reservedIndex, held: true, dynamic: false, reused: true, replaced: holderId };
  }
  if (st.isHeld(wanted)) throw inUse(st, req, wanted);
  return {
    index: wanted,
    held: false,
    dynamic: false,
    reused: false,
    replaced: holderId,
    movedFrom: reservedIndex,
  };
};

const exactPick = (st: PoolState, req: AllocateRequest, ip: string): Pick => {
  const index = indexOf(req.pool, ip);
  const holderId = st.byIndex.get(index);
  const resKey = st.resByIndex.get(index);
  if (resKey !== undefined && resKey !== req.stickyKey) throw inUse(st, req, index);
  if (holderId !== undefined) {
    if (!replaceable(st, req, holderId, false)) throw inUse(st, req, index);
    return { index, held: true, dynamic: false, reused: false, replaced: holderId };
  }
  return { index, held: false, dynamic: false, reused: false };
};

const dynamicIndex = (st: PoolState, pool: Pool, cooldown: Cooldown): number => {
  if (st.held >= st.layout.size) throw new PoolExhaustedError(pool.name, st.held, st.layout.size);
  const next = st.nextFree(cooldown);
  if ('index' in next) return next.index;
  const cooling: CoolingDown | undefined =
    next.cooling === 0
      ? undefined
      : {
          count: next.cooling,
          nextFreeAt: next.nextFreeAt,
          reuseCooldownMs: cooldown.ms,
          now: cooldown.now,
        };
  throw new PoolExhaustedError(pool.name, st.held, st.layout.size, cooling);
};

const exactFreeIndex = (st: PoolState, pool: Pool, ip: string): number => {
  const index = indexOf(pool, ip);
  const holder = st.holderOf(index);
  if (holder !== undefined) throw new AddressInUseError(pool.name, ip, holder);
  return index;
};

const commitLease = (st: PoolState, rec: Rec, pick: Pick): void => {
  if (pick.replaced !== undefined) st.leases.delete(pick.replaced);
  if (pick.movedFrom !== undefined) {
    // The old reserved address goes back (its pending holder is void from now on).
    st.resByIndex.delete(pick.movedFrom);
    st.byIndex.delete(pick.movedFrom);
    st.free(pick.movedFrom, rec.createdAt);
  }
  if (!pick.held) st.take(pick.index, pick.dynamic);
  if (rec.stickyKey !== undefined && !pick.reused) {
    st.sticky.set(rec.stickyKey, pick.index);
    st.resByIndex.set(pick.index, rec.stickyKey);
  }
  st.leases.set(rec.id, rec);
  st.byIndex.set(pick.index, rec.id);
};

const checkRestorable = (st: PoolState, req: RestoreRequest, index: number): void => {
  const holderId = st.byIndex.get(index);
  const resKey = st.resByIndex.get(index);
  const keyIndex = req.stickyKey === undefined ? undefined : st.sticky.get(req.stickyKey);
  const clash =
    (holderId !== undefined && holderId !== req.leaseId) ||
    (resKey !== undefined && resKey !== req.stickyKey) ||
    (keyIndex !== undefined && keyIndex !== index);
  if (clash) {
    throw new AddressInUseError(req.pool.name, req.ip, st.holderOf(index) ?? { namespace: '' });
  }
  if (st.leases.has(req.leaseId)) throw new LeaseIdExistsError(req.pool.name, req.leaseId);
};

const statsOf = (pool: Pool, st: PoolState, cooldown: Cooldown): PoolStats => {
  let pending = 0;
  for (const r of st.leases.values()) if (r.state === 'pending') pending++;
  const cooling = st.cooling(cooldown);
  return {
    pool: pool.name,
    size: st.layout.size,
    leased: st.held,
    pending,
    bound: st.leases.size - pending,
    reserved: st.sticky.size,
    cooling,
    free: st.layout.size - st.held - cooling,
  };
};

/** A record as the API shows it: its index read through the pool's stored layout. */
const toRecord = (st: PoolState, pool: Pool, r: Rec): LeaseRecord => ({
  id: r.id,
  pool: pool.name,
  ip: indexToIp(st.layout, r.index) ?? `?index ${r.index}`,
  state: r.state,
  namespace: r.namespace,
  name: r.name,
  generateName: r.generateName,
  uid: r.uid,
  stickyKey: r.stickyKey,
  createdAt: r.createdAt,
  expiresAt: r.expiresAt,
  boundAt: r.boundAt,
  requestUid: r.requestUid,
});

/** Maps every index of a pool's state onto a new layout; refuses when a held address is dropped. */
const relayout = (st: PoolState, pool: Pool): void => {
  const old = st.layout;
  const map = (i: number): number | undefined => {
    const ip = indexToIp(old, i);
    return ip === undefined ? undefined : ipToIndex(pool.layout, ip);
  };
  const heldIndexes = new Set([...st.byIndex.keys(), ...st.resByIndex.keys()]);
  const stranded = [...heldIndexes]
    .filter(i => map(i) === undefined)
    .sort((a, b) => a - b)
    .map(i => indexToIp(old, i) ?? '?');
  if (stranded.length > 0) throw new PoolShrinkError(pool.name, stranded);
  const next = new PoolState(pool.layout, st.epoch);
  for (const rec of st.leases.values()) rec.index = map(rec.index) ?? rec.index;
  remapInto(st, next, map);
  Object.assign(st, {
    layout: next.layout,
    dirty: next.dirty,
    cursor: next.cursor,
    held: next.held,
    noFresh: false,
  });
};

const remapInto = (
  st: PoolState,
  next: PoolState,
  map: (i: number) => number | undefined,
): void => {
  const entries = <V>(m: Map<number, V>): [number, V][] => [...m.entries()];
  const byIndex = entries(st.byIndex);
  const resByIndex = entries(st.resByIndex);
  const released = entries(st.released);
  st.byIndex.clear();
  st.resByIndex.clear();
  st.released.clear();
  for (const [i, id] of byIndex) st.byIndex.set(map(i) ?? i, id);
  for (const [i, key] of resByIndex) st.resByIndex.set(map(i) ?? i, key);
  for (const [key, i] of st.sticky) st.sticky.set(key, map(i) ?? i);
  for (const [i, t] of released) {
    const j = map(i);
    if (j !== undefined) st.released.set(j, t);
  }
  for (const i of new Set([...st.byIndex.keys(), ...st.resByIndex.keys(), ...st.released.keys()])) {
    next.setDirty(i);
  }
  next.held = new Set([...st.byIndex.keys(), ...st.resByIndex.keys()]).size;
  next.cursor = st.cursor < 0 ? -1 : (map(st.cursor) ?? -1);
};

/** Runs a synchronous store operation as a promise, turning throws into rejections. */
const run = <T>(fn: () => T): Promise<T> => {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
};

// Compile-time conformance (host-local's `var _ backend.Store = &FakeStore{}`).
export const _check: LeaseStore = new MemoryLeaseStore();
