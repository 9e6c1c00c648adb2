/**
 * Redis lease store: every mutation is one Lua script (src/pool/lua), every key of a pool sits
 * under the pool's hash tag. Statuses returned by the scripts are mapped to typed errors here and
 * nowhere else; connection failures become StoreUnavailableError (retryable). One server, a
 * Sentinel-monitored primary or a Cluster (redis-connection.ts); with `minReplicas` a write that
 * hands out an address is followed by WAIT; allocation holds back on a replication history the
 * pool was not reconciled on (allocate-8.lua, history-1.lua; docs/redis.md). Concurrent
 * allocations of a pool share one allocate-8.lua call (batcher.ts; docs/redis.md, "Allocation
 * batching").
 */
import { randomUUID } from 'node:crypto';
import { ErrorReply } from 'redis';
import { indexOf, ipOf } from './addressing.js';
import { isRetentionAction } from './annotations.js';
import { Batcher, type BatchStats } from './batcher.js';
import { preflight } from './preflight.js';
import type { Pool } from './pools-file.js';
import {
  AddressInUseError,
  LayoutMismatchError,
  LeaseConflictError,
  LeaseIdExistsError,
  LeaseNotFoundError,
  PoolExhaustedError,
  PoolReconcilingError,
  PoolRecoveringError,
  PoolShrinkError,
  ReplicasBehindError,
  ReservationExistsError,
  STATUS,
  StoreConfigError,
  StoreUnavailableError,
  type Holder,
} from './errors.js';
import { poolKeys, type PoolKeys } from './keys.js';
import { indexRuns, indexToIp, parseSegments, serializeSegments, type Layout } from './layout.js';
import {
  createRedisConnection,
  redactUrl,
  type RedisCommands,
  type RedisConnection,
  type RedisTopology,
} from './redis-connection.js';
import { scriptName, type ScriptArg, type ScriptName } from './scripts.js';
import type {
  AllocateRequest,
  Allocation,
  EnsureOptions,
  EnsureResult,
  LeaseRecord,
  CooldownOptions,
  CoolingAddress,
  LeaseStore,
  PoolSnapshot,
  PoolStats,
  SnapshotLease,
  SnapshotReservation,
  ReleaseOptions,
  ReleaseResult,
  Reservation,
  RestoreRequest,
  RetentionPolicy,
  StoreHistory,
  UnreserveResult,
} from './store.js';

export { redactUrl };

export interface RedisStoreOptions {
  /** A single server; ignored when `topology` is given. */
  readonly url?: string | undefined;
  /** Sentinel or Cluster (or a single server) instead of `url`. */
  readonly topology?: RedisTopology | undefined;
  /** ACL user and password (`--redis-username`, `--redis-password-file`). */
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  /** TLS for Sentinel and Cluster nodes (a single server takes it from `rediss://`). */
  readonly tls?: boolean | undefined;
  /** PEM of the CA that signed the servers' certificates. */
  readonly ca?: string | undefined;
  /**
   * `--redis-min-replicas`: after a write that hands out an address (allocate, reserve,
   * restore), WAIT for this many replicas to acknowledge it; fewer is ReplicasBehindError.
   */
  readonly minReplicas?: number | undefined;
  /** How long WAIT waits (default: half the command deadline). */
  readonly minReplicasTimeoutMs?: number | undefined;
  /** Per-command deadline; a command past it fails as StoreUnavailableError. */
  readonly commandTimeoutMs?: number | undefined;
  readonly connectTimeoutMs?: number | undefined;
  /** Prefix of the client name shown by CLIENT LIST. */
  readonly clientName?: string | undefined;
  /**
   * Concurrent allocations of one pool share one allocate-8.lua call, up to this many items
   * (default ALLOCATION_BATCH_MAX; 1 sends every allocation alone, as before batching).
   */
  readonly allocationBatchMax?: number | undefined;
}

/** Record fields as stored in the leases hash (short keys: this is the hot path). */
interface StoredRecord {
  i: number;
  s: 'pending' | 'bound';
  ns: string;
  n?: string;
  g?: string;
  u?: string;
  k?: string;
  c: number;
  e?: number;
  b?: number;
  /** Admission request uid. */
  q?: string;
  /** Attempt token of the admission call that holds the lease. */
  t?: string;
}

type Reply = readonly unknown[];

/** One allocate-8.lua item: the pool's keys and the item's 15 ARGV. */
interface AllocateItem {
  readonly keys: PoolKeys;
  readonly args: readonly ScriptArg[];
}

/**
 * One item's answer: its reply, or the error reply the item raised inside the script; and, for
 * a write that handed out an address under `minReplicas`, the WAIT its batch shares.
 */
interface ItemOutcome {
  readonly reply: Reply | ErrorReply;
  readonly replicated: Promise<void> | undefined;
}

/** What an allocate-8.lua call asked, for the error its reply may turn into. */
interface AllocationCall {
  readonly ip: string | undefined;
  readonly leaseId: string;
  readonly now: number;
  readonly reuseCooldownMs: number;
}
type ScriptCaller = (keys: PoolKeys, args: readonly ScriptArg[]) => Promise<unknown>;

const DEFAULT_COMMAND_TIMEOUT_MS = 2_000;
/**
 * Largest allocation batch. The server spends ~10–20 µs per item (these shared cores), so a
 * call of 64 holds Redis for about a millisecond at most; past ~16 items per call the per-call
 * cost is already amortised (bench/RESULTS.md, "batching").
 */
export const ALLOCATION_BATCH_MAX = 64;
const RELAYOUT_ATTEMPTS = 5;

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
const str = (v: unknown): string => (typeof v === 'string' ? v : String(v));

const toHolder = (type: unknown, value: unknown): Holder => {
  if (type === 'key') return { namespace: str(value).split('/')[0] ?? '', stickyKey: str(value) };
  const r = JSON.parse(str(value)) as StoredRecord;
  return {
    namespace: r.ns,
    name: r.n,
    generateName: r.g,
    state: r.s,
    leaseStickyKey: r.k,
  };
};

/** A record as the API shows it; `layout` is the one its index refers to (the stored one). */
const fromStored = (pool: Pool, layout: Layout, id: string, r: StoredRecord): LeaseRecord => ({
  id,
  pool: pool.name,
  ip: indexToIp(layout, r.i) ?? `?index ${r.i}`,
  state: r.s,
  namespace: r.ns,
  name: r.n,
  generateName: r.g,
  uid: r.u,
  stickyKey: r.k,
  createdAt: r.c,
  expiresAt: r.e,
  boundAt: r.b,
  requestUid: r.q,
});

/** The record JSON without `i`, which the script prepends. Empty fields are left out. */
const recordJson = (fields: Omit<StoredRecord, 'i'>): string => {
  const compact: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields) as [string, unknown][]) {
    if (v !== undefined && v !== '') compact[k] = v;
  }
  return JSON.stringify(compact);
};

const flag = (b: boolean | undefined): string => (b === true ? '1' : '0');

/** An item's reply; the error reply it raised inside the script is thrown, as a call's would be. */
const itemReply = (o: ItemOutcome): Reply => {
  if (o.reply instanceof ErrorReply) throw o.reply;
  return o.reply;
};

/** ARGV of allocate-8.lua in "lease" mode. */
const allocateArgs = (
  req: AllocateRequest,
  wanted: number,
  rec: Omit<StoredRecord, 'i'>,
): ScriptArg[] => [
  req.pool.layout.hash,
  'lease',
  req.leaseId,
  wanted,
  req.stickyKey ?? '',
  recordJson(rec),
  rec.e ?? 0,
  flag(req.dryRun),
  req.pod.namespace,
  req.pod.name ?? '',
  req.requestUid ?? '',
  req.attempt ?? '',
  req.replacePendingBefore === undefined ? '' : String(req.replacePendingBefore),
  rec.c,
  cooldownOf(req.reuseCooldownMs),
];

/** A ZRANGE … WITHSCORES reply, as node-redis transforms it (or the raw flat list). */
const toScored = (reply: unknown): { value: string; score: number }[] => {
  const list = Array.isArray(reply) ? (reply as unknown[]) : [];
  if (list.every(e => typeof e === 'object' && e !== null && 'score' in e)) {
    return (list as { value: unknown; score: unknown }[]).map(e => ({
      value: str(e.value),
      score: num(e.score),
    }));
  }
  const out: { value: string; score: number }[] = [];
  for (let i = 0; i + 1 < list.length; i += 2) {
    out.push({ value: str(list[i]), score: num(list[i + 1]) });
  }
  return out;
};

/** A cooldown as the scripts take it: whole ms, 0 for none. */
const cooldownOf = (ms: number | undefined): number =>
  ms === undefined || !(ms > 0) ? 0 : Math.ceil(ms);

/** A retention policy as stored in the policy hash, and read back (refusing what is not one). */
const policyJson = (p: RetentionPolicy): string =>
  JSON.stringify({ whenScaled: p.whenScaled, whenDeleted: p.whenDeleted });

const fromPolicyJson = (pool: string, statefulSet: string, json: string): RetentionPolicy => {
  let v: Partial<Record<keyof RetentionPolicy, unknown>> | undefined;
  try {
    v = JSON.parse(json) as typeof v;
  } catch {
    v = undefined;
  }
  if (v === undefined || !isRetentionAction(v.whenScaled) || !isRetentionAction(v.whenDeleted)) {
    throw new Error(
      `pool "${pool}": the stored retention policy of ${statefulSet} is unreadable: ${json.slice(0, 64)}`,
    );
  }
  return { whenScaled: v.whenScaled, whenDeleted: v.whenDeleted };
};

export class RedisLeaseStore implements LeaseStore {
  readonly kind = 'redis' as const;
  readonly #conn: RedisConnection;
  readonly #client: RedisCommands;
  readonly #keys = new Map<string, PoolKeys>();
  readonly #timeoutMs: number;
  readonly #minReplicas: number;
  readonly #waitMs: number;
  /** Layouts read back from stored segments, by hash (a reader whose pools file differs). */
  readonly #stored = new Map<string, Layout>();
  /** Allocations ("lease" mode, not dry runs) batched per pool, by meta key (batcher.ts). */
  readonly #allocations: Batcher<AllocateItem, ItemOutcome>;

  private constructor(conn: RedisConnection, options: RedisStoreOptions) {
    this.#conn = conn;
    this.#client = conn.commands;
    this.#timeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.#minReplicas = options.minReplicas ?? 0;
    this.#waitMs = options.minReplicasTimeoutMs ?? Math.max(10, Math.floor(this.#timeoutMs / 2));
    this.#allocations = new Batcher({
      run: (_meta, items) => this.#allocateCall(items, true),
      maxBatch: Math.max(1, Math.floor(options.allocationBatchMax ?? ALLOCATION_BATCH_MAX)),
    });
  }

  /** Allocation batches sent so far, the allocations in them and the largest (bench, tests). */
  get allocationBatches(): BatchStats {
    return this.#allocations.stats;
  }

  /**
   * Connects (failing fast when Redis does not answer), checks that the server cannot lose
   * leases (preflight.ts: `noeviction`, a version with every command the scripts use), and
   * returns a ready store.
   */
  static async connect(options: RedisStoreOptions): Promise<RedisLeaseStore> {
    const conn = createRedisConnection({
      topology: options.topology ?? { kind: 'single', url: options.url ?? '' },
      username: options.username,
      password: options.password,
      tls: options.tls,
      ca: options.ca,
      clientName: options.clientName ?? 'podlease',
      connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    });
    // node-redis keeps retrying a refused first connection; give up after the connect timeout.
    const limitMs = options.connectTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`no connection within ${limitMs} ms`));
      }, limitMs);
    });
    const connecting = conn.connect();
    connecting.catch(() => undefined); // settled below; a late rejection after destroy() is expected
    try {
      await Promise.race([connecting, deadline]);
    } catch (err) {
      conn.destroy();
      const why = err instanceof Error ? err.message : String(err);
      throw new StoreUnavailableError(`cannot connect to ${conn.where}: ${why}`, {
        cause: err,
      });
    } finally {
      clearTimeout(timer);
    }
    const store = new RedisLeaseStore(conn, options);
    try {
      // Every primary: in a Cluster each holds the pools of its slots.
      for (const p of await store.#do(() => conn.primaries())) {
        await store.#do(() => preflight(p.client, p.where));
      }
    } catch (err) {
      conn.destroy();
      throw err;
    }
    return store;
  }

  async ensurePool(pool: Pool, options: EnsureOptions): Promise<EnsureResult> {
    for (let attempt = 0; attempt < RELAYOUT_ATTEMPTS; attempt++) {
      const result = await this.#ensureOnce(pool, options);
      if (result !== 'retry') return result;
    }
    throw new LayoutMismatchError(pool.name);
  }

  /** Creates the pool's state when it has none (init-8.lua). */
  async #init(pool: Pool, options: EnsureOptions): Promise<EnsureResult | 'retry'> {
    if (!options.initialize) return 'uninitialised';
    const newEpoch = options.withoutEpoch === true ? '' : randomUUID();
    const layoutArgs = [pool.layout.hash, pool.layout.size, serializeSegments(pool.layout)];
    const r = await this.#script('init', this.#poolKeys(pool), [
      ...layoutArgs,
      newEpoch,
      Date.now(),
    ]);
    return num(r[0]) === 0 ? 'created' : 'retry';
  }

  /** One pass of ensurePool; 'retry' when another replica changed the pool meanwhile. */
  async #ensureOnce(pool: Pool, options: EnsureOptions): Promise<EnsureResult | 'retry'> {
    const keys = this.#poolKeys(pool);
    const [layout, segments, epoch] = await this.#do(() =>
      this.#client.hmGet(keys.meta, ['layout', 'segments', 'epoch']),
    );
    if (layout === null || layout === undefined) return this.#init(pool, options);
    if (layout !== pool.layout.hash) {
      const old = parseSegments(str(segments));
      if (old === undefined) throw new Error(`pool "${pool.name}": stored segments are unreadable`);
      return (await this.#relayout(pool, old, layout)) ? 'relaid' : 'retry';
    }
    if (epoch !== null && epoch !== undefined) return 'ready';
    if (!options.initialize || options.withoutEpoch === true) return 'uninitialised';
    await this.markReady(pool);
    return 'created';
  }

  async allocate(req: AllocateRequest): Promise<Allocation> {
    const pool = req.pool;
    const now = req.now ?? Date.now();
    const wanted = req.ip === undefined ? -1 : indexOf(pool, req.ip);
    const expiresAt = now + req.ttlMs;
    const rec = {
      s: 'pending' as const,
      ns: req.pod.namespace,
      n: req.pod.name,
      g: req.pod.generateName,
      k: req.stickyKey,
      c: now,
      e: expiresAt,
      q: req.requestUid,
      t: req.attempt,
    };
    const item = { keys: this.#poolKeys(pool), args: allocateArgs(req, wanted, rec) };
    // A dry run is sent alone (it writes nothing and waits for no replica); the others share a
    // script call with the concurrent allocations of the same pool.
    const outcome =
      req.dryRun === true
        ? await this.#allocateAlone(item, false)
        : await this.#allocations.submit(item.keys.meta, item);
    const r = itemReply(outcome);
    const index = this.#allocationIndex(pool, r, {
      ip: req.ip,
      leaseId: req.leaseId,
      now,
      reuseCooldownMs: cooldownOf(req.reuseCooldownMs),
    });
    if (outcome.replicated !== undefined) await outcome.replicated;
    const replaced = str(r[2]);
    const movedFrom = num(r[5]);
    const retried = num(r[4]) === 1;
    // A retry answers with the lease the first try made, as the script read it.
    const stored = retried ? (JSON.parse(str(r[6])) as StoredRecord) : { i: index, ...rec };
    const lease = fromStored(pool, pool.layout, req.leaseId, stored);
    return {
      lease,
      reused: num(r[3]) === 1,
      replaced: replaced === '' ? undefined : replaced,
      dryRun: req.dryRun === true,
      retried,
      movedFrom: movedFrom >= 0 ? ipOf(pool, movedFrom) : undefined,
    };
  }

  async bind(
    pool: Pool,
    leaseId: string,
    pod: { namespace: string; name: string; uid: string },
    now?: number,
  ): Promise<LeaseRecord> {
    const r = await this.#script('bind', this.#poolKeys(pool), [
      leaseId,
      pod.namespace,
      pod.name,
      pod.uid,
      now ?? Date.now(),
    ]);
    const status = num(r[0]);
    if (status === STATUS.NOT_FOUND) throw new LeaseNotFoundError(pool.name, leaseId);
    const stored = JSON.parse(str(r[1])) as StoredRecord;
    if (status === STATUS.OWNER_MISMATCH) {
      throw new LeaseConflictError(
        pool.name,
        leaseId,
        stored.u ?? '',
        `${stored.ns}/${stored.n ?? ''}`,
      );
    }
    return fromStored(pool, await this.#layoutNow(pool), leaseId, stored);
  }

  async release(pool: Pool, leaseId: string, options: ReleaseOptions = {}): Promise<ReleaseResult> {
    const r = await this.#script('release', this.#poolKeys(pool), [
      leaseId,
      options.onlyIfPending === true ? '1' : '0',
      options.uid ?? '',
      options.attempt ?? '',
      options.now ?? Date.now(),
    ]);
    const status = num(r[0]);
    if (status === STATUS.NOT_FOUND) {
      return { released: false, keptByReservation: false, reason: 'not-found' };
    }
    if (status === STATUS.OWNER_MISMATCH) {
      const why = str(r[1]);
      const reason =
        why === 'not-pending' || why === 'attempt-mismatch' ? why : ('uid-mismatch' as const);
      return { released: false, keptByReservation: false, reason };
    }
    const layout = await this.#layoutByHash(pool, str(r[3]));
    return {
      released: true,
      ip: indexToIp(layout, num(r[1])),
      keptByReservation: num(r[2]) === 1,
    };
  }

  async expired(pool: Pool, now: number, limit = 1000): Promise<LeaseRecord[]> {
    const keys = this.#poolKeys(pool);
    const ids = await this.#do(() =>
      this.#client.zRange(keys.pending, '-inf', now, {
        BY: 'SCORE',
        LIMIT: { offset: 0, count: limit },
      }),
    );
    return this.#records(pool, ids);
  }

  async reserve(
    pool: Pool,
    key: string,
    ip?: string,
    options: CooldownOptions = {},
  ): Promise<Reservation> {
    const wanted = ip === undefined ? -1 : indexOf(pool, ip);
    const keys = this.#poolKeys(pool);
    const now = options.now ?? Date.now();
    const reuseCooldownMs = cooldownOf(options.reuseCooldownMs);
    const outcome = await this.#allocateAlone({
      keys,
      args: [
        pool.layout.hash,
        'reserve',
        '',
        wanted,
        key,
        '',
        0,
        '0',
        '',
        '',
        '',
        '',
        '',
        now,
        reuseCooldownMs,
      ],
    });
    const r = itemReply(outcome);
    const index = this.#allocationIndex(pool, r, { ip, leaseId: '', now, reuseCooldownMs });
    if (outcome.replicated !== undefined) await outcome.replicated;
    if (wanted >= 0 && index !== wanted) {
      throw new ReservationExistsError(pool.name, key, ipOf(pool, index));
    }
    const leaseId = await this.#do(() => this.#client.hGet(keys.byip, String(index)));
    return { pool: pool.name, key, ip: ipOf(pool, index), leaseId: leaseId ?? undefined };
  }

  async unreserve(pool: Pool, key: string, now?: number): Promise<UnreserveResult> {
    const keys = this.#poolKeys(pool);
    const r = await this.#script('unreserve', keys, [key, now ?? Date.now()]);
    if (num(r[0]) === STATUS.NOT_FOUND) return { removed: false, freed: false };
    const layout = await this.#layoutNow(pool);
    return { removed: true, ip: indexToIp(layout, num(r[1])), freed: num(r[2]) === 1 };
  }

  async get(pool: Pool, leaseId: string): Promise<LeaseRecord | undefined> {
    const [rec] = await this.#records(pool, [leaseId]);
    return rec;
  }

  async leases(pool: Pool): Promise<LeaseRecord[]> {
    const keys = this.#poolKeys(pool);
    const [meta, all] = await this.#do(() =>
      this.#client.multi().hmGet(keys.meta, ['layout', 'segments']).hGetAll(keys.leases).exec(),
    );
    const layout = this.#layoutFromMeta(pool, meta);
    return Object.entries(all as unknown as Record<string, string>).map(([id, json]) =>
      fromStored(pool, layout, id, JSON.parse(json) as StoredRecord),
    );
  }

  async reservations(pool: Pool): Promise<Reservation[]> {
    const keys = this.#poolKeys(pool);
    const [meta, sticky, byip] = await this.#do(() =>
      this.#client
        .multi()
        .hmGet(keys.meta, ['layout', 'segments'])
        .hGetAll(keys.sticky)
        .hGetAll(keys.byip)
        .exec(),
    );
    const layout = this.#layoutFromMeta(pool, meta);
    const holders = byip as unknown as Record<string, string>;
    return Object.entries(sticky as unknown as Record<string, string>).map(([key, index]) => ({
      pool: pool.name,
      key,
      ip: indexToIp(layout, Number(index)) ?? `?index ${index}`,
      leaseId: holders[index],
    }));
  }

  async stats(pool: Pool, options: CooldownOptions = {}): Promise<PoolStats> {
    const keys = this.#poolKeys(pool);
    const cooldown = cooldownOf(options.reuseCooldownMs);
    // Released after this time: still cooling down (ZCOUNT is O(log n), not a scan).
    const since = (options.now ?? Date.now()) - cooldown;
    const [meta, pending, leases, reserved, cooling] = await this.#do(() =>
      this.#client
        .multi()
        .hmGet(keys.meta, ['size', 'held'])
        .zCard(keys.pending)
        .hLen(keys.leases)
        .hLen(keys.sticky)
        .zCount(keys.released, cooldown > 0 ? `(${since}` : '+inf', '+inf')
        .exec(),
    );
    const [size, held] = (meta as unknown as (string | null)[]).map(v => Number(v ?? 0));
    const p = num(pending);
    const leased = held ?? 0;
    const c = cooldown > 0 ? num(cooling) : 0;
    return {
      pool: pool.name,
      size: size ?? 0,
      leased,
      pending: p,
      bound: num(leases) - p,
      reserved: num(reserved),
      cooling: c,
      free: (size ?? 0) - leased - c,
    };
  }

  /**
   * One MULTI (one round trip, one consistent view): meta, the leases, sticky and byip hashes,
   * and the released addresses scored after `now - reuseCooldownMs`.
   */
  async snapshot(pool: Pool, options: CooldownOptions = {}): Promise<PoolSnapshot> {
    const keys = this.#poolKeys(pool);
    const cooldown = cooldownOf(options.reuseCooldownMs);
    const now = options.now ?? Date.now();
    const [meta, all, sticky, byip, released] = await this.#do(() =>
      this.#client
        .multi()
        .hmGet(keys.meta, ['layout', 'segments', 'size', 'held', 'epoch'])
        .hGetAll(keys.leases)
        .hGetAll(keys.sticky)
        .hGetAll(keys.byip)
        .zRangeWithScores(keys.released, cooldown > 0 ? `(${now - cooldown}` : '+inf', '+inf', {
          BY: 'SCORE',
        })
        .exec(),
    );
    const [hash, , size, held, epoch] = meta as unknown as (string | null)[];
    if (hash === null || hash === undefined) throw new PoolRecoveringError(pool.name);
    const layout = this.#layoutFromMeta(pool, meta);
    const ipAt = (index: number): string => indexToIp(layout, index) ?? `?index ${index}`;
    const records = all as unknown as Record<string, string>;
    const leases: SnapshotLease[] = [];
    for (const id in records) {
      const r = JSON.parse(records[id] ?? '{}') as StoredRecord;
      leases.push(Object.assign(fromStored(pool, layout, id, r), { index: r.i }));
    }
    leases.sort((a, b) => a.index - b.index);
    const holders = byip as unknown as Record<string, string>;
    const reservations: SnapshotReservation[] = Object.entries(
      sticky as unknown as Record<string, string>,
    )
      .map(([key, index]) => ({
        pool: pool.name,
        key,
        ip: ipAt(Number(index)),
        leaseId: holders[index],
        index: Number(index),
      }))
      .sort((a, b) => a.index - b.index);
    const cooling: CoolingAddress[] =
      cooldown > 0
        ? toScored(released).map(({ value, score }) => ({
            ip: ipAt(Number(value)),
            index: Number(value),
            releasedAt: score,
          }))
        : [];
    const pending = leases.filter(l => l.state === 'pending').length;
    const total = Number(size ?? 0);
    const leased = Number(held ?? 0);
    return {
      pool: pool.name,
      layoutHash: hash,
      epoch: epoch ?? undefined,
      at: now,
      reuseCooldownMs: cooldown,
      stats: {
        pool: pool.name,
        size: total,
        leased,
        pending,
        bound: leases.length - pending,
        reserved: reservations.length,
        cooling: cooling.length,
        free: total - leased - cooling.length,
      },
      leases,
      reservations,
      cooling,
    };
  }

  async saveReport(pool: Pool, json: string): Promise<void> {
    await this.#do(() => this.#client.set(this.#poolKeys(pool).report, json));
  }

  async report(pool: Pool): Promise<string | undefined> {
    const v = await this.#do(() => this.#client.get(this.#poolKeys(pool).report));
    return v ?? undefined;
  }

  async restore(req: RestoreRequest): Promise<LeaseRecord> {
    const pool = req.pool;
    const index = indexOf(pool, req.ip);
    const now = req.now ?? Date.now();
    const rec = {
      s: 'bound' as const,
      ns: req.pod.namespace,
      n: req.pod.name,
      g: req.pod.generateName,
      u: req.pod.uid,
      k: req.stickyKey,
      c: now,
      b: now,
    };
    const outcome = await this.#allocateAlone({
      keys: this.#poolKeys(pool),
      args: [
        pool.layout.hash,
        'restore',
        req.leaseId,
        index,
        req.stickyKey ?? '',
        recordJson(rec),
        0,
        '0',
        req.pod.namespace,
        req.pod.name ?? '',
        '',
        '',
        '',
        now,
        0,
      ],
    });
    const r = itemReply(outcome);
    this.#allocationIndex(pool, r, { ip: req.ip, leaseId: req.leaseId, now, reuseCooldownMs: 0 });
    if (outcome.replicated !== undefined) await outcome.replicated;
    // The script stored exactly this record at this index (the layout hash it checked is this
    // pool's): no second round trip to read it back (a rebuild restores thousands).
    return fromStored(pool, pool.layout, req.leaseId, { i: index, ...rec });
  }

  async epoch(pool: Pool): Promise<string | undefined> {
    const v = await this.#do(() => this.#client.hGet(this.#poolKeys(pool).meta, 'epoch'));
    return v ?? undefined;
  }

  async markReady(pool: Pool): Promise<string> {
    const meta = this.#poolKeys(pool).meta;
    // The meta hash must exist (init or rebuild created it); HSETNX alone would create a
    // meta holding only an epoch.
    const exists = await this.#do(() => this.#client.hExists(meta, 'layout'));
    if (!exists) throw new PoolRecoveringError(pool.name);
    await this.#do(() => this.#client.hSetNX(meta, 'epoch', randomUUID()));
    return (await this.epoch(pool)) ?? '';
  }

  async history(pool: Pool): Promise<StoreHistory> {
    const r = await this.#script('history', this.#poolKeys(pool), ['read']);
    if (num(r[0]) === STATUS.NOT_INITIALISED) throw new PoolRecoveringError(pool.name);
    const confirmed = str(r[2]);
    return { current: str(r[1]), reconciledOn: confirmed === '' ? undefined : confirmed };
  }

  async markReconciled(pool: Pool, history: string): Promise<boolean> {
    const r = await this.#script('history', this.#poolKeys(pool), ['confirm', history]);
    if (num(r[0]) === STATUS.NOT_INITIALISED) throw new PoolRecoveringError(pool.name);
    return num(r[0]) === STATUS.OK;
  }

  async setPolicy(pool: Pool, statefulSet: string, policy: RetentionPolicy): Promise<void> {
    if (!isRetentionAction(policy.whenScaled) || !isRetentionAction(policy.whenDeleted)) {
      throw new Error(`retention policy of ${statefulSet}: not Retain or Delete`);
    }
    const json = policyJson(policy);
    await this.#do(() => this.#client.hSet(this.#poolKeys(pool).policy, statefulSet, json));
  }

  async deletePolicy(pool: Pool, statefulSet: string): Promise<boolean> {
    const n = await this.#do(() => this.#client.hDel(this.#poolKeys(pool).policy, statefulSet));
    return num(n) > 0;
  }

  async policies(pool: Pool): Promise<ReadonlyMap<string, RetentionPolicy>> {
    const all = await this.#do(() => this.#client.hGetAll(this.#poolKeys(pool).policy));
    return new Map(
      Object.entries(all as unknown as Record<string, string>).map(([sts, json]) => [
        sts,
        fromPolicyJson(pool.name, sts, json),
      ]),
    );
  }

  /** Every primary answers (a Cluster: each of them). */
  async ping(): Promise<void> {
    await this.#do(async () => {
      await Promise.all((await this.#conn.primaries()).map(p => p.client.ping()));
    });
  }

  async close(): Promise<void> {
    if (this.#conn.isOpen) await this.#conn.close();
  }

  /** Deletes every key of a pool. For tests and `podlease` admin use only. */
  async dropPool(name: string): Promise<void> {
    await this.#do(() => this.#client.del(Object.values(poolKeys(name))));
  }

  #poolKeys(pool: Pool): PoolKeys {
    let keys = this.#keys.get(pool.name);
    if (keys === undefined) {
      keys = poolKeys(pool.name);
      this.#keys.set(pool.name, keys);
    }
    return keys;
  }

  /** The layout stored indexes refer to, from a `[layout, segments]` meta read. */
  #layoutFromMeta(pool: Pool, meta: unknown): Layout {
    const [hash, segments] = (meta as (string | null | undefined)[] | undefined) ?? [];
    if (hash === undefined || hash === null || hash === pool.layout.hash) return pool.layout;
    let layout = this.#stored.get(hash);
    if (layout === undefined) {
      layout = parseSegments(str(segments));
      if (layout === undefined) {
        throw new Error(`pool "${pool.name}": stored segments are unreadable`);
      }
      if (this.#stored.size > 64) this.#stored.clear();
      this.#stored.set(hash, layout);
    }
    return layout;
  }

  /** The layout of the given stored hash: this pools file's when they agree, else read back. */
  async #layoutByHash(pool: Pool, hash: string): Promise<Layout> {
    if (hash === '' || hash === pool.layout.hash) return pool.layout;
    return this.#stored.get(hash) ?? this.#layoutNow(pool);
  }

  /** The layout stored right now. */
  async #layoutNow(pool: Pool): Promise<Layout> {
    const meta = await this.#do(() =>
      this.#client.hmGet(this.#poolKeys(pool).meta, ['layout', 'segments']),
    );
    return this.#layoutFromMeta(pool, meta);
  }

  /** Maps an allocate-8.lua reply to an index, or throws the typed error for its status. */
  #allocationIndex(pool: Pool, r: Reply, call: AllocationCall): number {
    const ip = call.ip;
    switch (num(r[0])) {
      case STATUS.OK:
        return num(r[1]);
      case STATUS.EXHAUSTED:
        throw new PoolExhaustedError(
          pool.name,
          num(r[1]),
          num(r[2]),
          r[3] === undefined
            ? undefined
            : {
                count: num(r[3]),
                nextFreeAt: num(r[4]),
                reuseCooldownMs: call.reuseCooldownMs,
                now: call.now,
              },
        );
      case STATUS.IN_USE:
        throw new AddressInUseError(
          pool.name,
          ip ?? indexToIp(pool.layout, num(r[3])) ?? '',
          toHolder(r[1], r[2]),
        );
      case STATUS.NOT_INITIALISED:
        throw new PoolRecoveringError(pool.name);
      case STATUS.LAYOUT_MISMATCH:
        throw new LayoutMismatchError(pool.name);
      case STATUS.ID_EXISTS:
        throw new LeaseIdExistsError(pool.name, call.leaseId);
      case STATUS.RECONCILING:
        throw new PoolReconcilingError(pool.name, str(r[1]), str(r[2]));
      default:
        throw new Error(`pool "${pool.name}": unexpected allocate status ${str(r[0])}`);
    }
  }

  async #records(pool: Pool, ids: readonly string[]): Promise<LeaseRecord[]> {
    if (ids.length === 0) return [];
    const keys = this.#poolKeys(pool);
    const [meta, values] = await this.#do(() =>
      this.#client
        .multi()
        .hmGet(keys.meta, ['layout', 'segments'])
        .hmGet(keys.leases, [...ids])
        .exec(),
    );
    const layout = this.#layoutFromMeta(pool, meta);
    const found = values as unknown as (string | null)[];
    const out: LeaseRecord[] = [];
    ids.forEach((id, n) => {
      const v = found[n];
      if (typeof v === 'string') {
        out.push(fromStored(pool, layout, id, JSON.parse(v) as StoredRecord));
      }
    });
    return out;
  }

  /**
   * Lays the pool out for this pools file in one atomic script (relayout-8.lua): the state is
   * read and rewritten with no other command in between. False when the stored layout changed
   * since `oldHash` was read (the caller starts over).
   */
  async #relayout(pool: Pool, old: Layout, oldHash: string): Promise<boolean> {
    const runs = indexRuns(old, pool.layout);
    const r = await this.#script('relayout', this.#poolKeys(pool), [
      oldHash,
      pool.layout.hash,
      pool.layout.size,
      serializeSegments(pool.layout),
      JSON.stringify(runs),
    ]);
    const status = num(r[0]);
    if (status === STATUS.SHRINK_REFUSED) {
      const total = num(r[1]);
      const named = r.slice(2).map(i => indexToIp(old, num(i)) ?? '?');
      throw new PoolShrinkError(pool.name, named, total);
    }
    return status === STATUS.OK;
  }

  /**
   * `--redis-min-replicas`: WAIT until that many replicas acknowledged the write just made to
   * the slot of `key` (WAIT runs on the connection that carried it). Replication stays
   * asynchronous: this narrows the window in which a failover loses an acknowledged lease, it
   * does not close it (docs/redis.md).
   */
  async #replicated(key: string): Promise<void> {
    if (this.#minReplicas <= 0) return;
    const acked = await this.#do(() =>
      this.#conn.waitReplicas(key, this.#minReplicas, this.#waitMs),
    );
    if (acked < this.#minReplicas) {
      throw new ReplicasBehindError(this.#minReplicas, acked, this.#waitMs);
    }
  }

  /** One allocate-8.lua item in a call of its own (reserve, restore, dry runs). */
  async #allocateAlone(item: AllocateItem, replicate = true): Promise<ItemOutcome> {
    // After the pool's queued allocations, as it was called after them.
    this.#allocations.flushNow(item.keys.meta);
    const [outcome] = await this.#allocateCall([item], replicate);
    if (outcome === undefined) throw new Error('script allocate answered no reply');
    return outcome;
  }

  /**
   * One allocate-8.lua call for items of one pool: one outcome per item. A failed call (the
   * connection, the deadline, a restarted server) rejects, and with it every item; NOSCRIPT is
   * answered by node-redis sending the script again (EVAL). An error an item raises inside the
   * script (READONLY after a failover, OOM) is that item's own, thrown to its caller as the
   * ErrorReply a call of its own would throw. With `minReplicas`, when any item handed out an
   * address, one WAIT follows the call (it covers every write the connection made before it)
   * and each such item awaits it.
   */
  async #allocateCall(items: readonly AllocateItem[], replicate: boolean): Promise<ItemOutcome[]> {
    const keys = items[0]?.keys;
    if (keys === undefined) return [];
    // A lone item's ARGV as it is; a batch's by a plain loop (Array#flatMap: ~0.5 µs a call).
    let args = items[0]?.args ?? [];
    if (items.length > 1) {
      const all: ScriptArg[] = [];
      for (const item of items) all.push(...item.args);
      args = all;
    }
    const r = await this.#script('allocate', keys, args);
    if (r.length !== items.length) {
      throw new Error(`script allocate answered ${r.length} replies for ${items.length} items`);
    }
    const replies = r.map((x): Reply | ErrorReply =>
      x instanceof ErrorReply || Array.isArray(x)
        ? (x as Reply | ErrorReply)
        : new ErrorReply(`script allocate: an item answered ${str(x)}`),
    );
    let replicated: Promise<void> | undefined;
    const handedOut = replies.some(x => Array.isArray(x) && num(x[0]) === STATUS.OK);
    if (replicate && handedOut && this.#minReplicas > 0) {
      replicated = this.#replicated(keys.meta);
      // Awaited by each item that handed out an address; this keeps a rejection handled.
      replicated.catch(() => undefined);
    }
    return replies.map(reply => ({ reply, replicated }));
  }

  async #script(name: ScriptName, keys: PoolKeys, args: readonly ScriptArg[]): Promise<Reply> {
    // A script for a pool goes to Redis after the allocations queued for it (called before it):
    // a release the webhook sends when its deadline gave up on an allocation runs after it.
    if (name !== 'allocate') this.#allocations.flushNow(keys.meta);
    const fn = (this.#client as unknown as Record<string, ScriptCaller>)[scriptName(name)];
    if (fn === undefined) throw new Error(`script ${name} is not registered`);
    const reply = await this.#do(() => fn.call(this.#client, keys, args));
    if (!Array.isArray(reply)) throw new Error(`script ${name} returned ${typeof reply}`);
    return reply as Reply;
  }

  /**
   * Runs a Redis call with the command deadline, turning connection problems and timeouts into
   * StoreUnavailableError. (A plain timer: node-redis' per-command `timeout` builds an
   * AbortSignal and a DOMException for every command, which showed up in allocation profiles.)
   */
  async #do<T>(fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new StoreUnavailableError(`no answer within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
    });
    try {
      return await Promise.race([fn(), deadline]);
    } catch (err) {
      if (
        err instanceof ErrorReply ||
        err instanceof StoreUnavailableError ||
        err instanceof StoreConfigError
      ) {
        throw err;
      }
      const message = err instanceof Error ? err.message : String(err);
      throw new StoreUnavailableError(message, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }
}

// Compile-time conformance of the factory.
export const _check: (o: RedisStoreOptions) => Promise<LeaseStore> = o =>
  RedisLeaseStore.connect(o);
