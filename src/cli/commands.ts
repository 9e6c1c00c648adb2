/**
 * The store commands of `podlease`: `pools`, `leases`, `reservations`, `reserve`, `release`,
 * `unreserve` and `check`. Each takes the parsed config and an opened store, prints in `-o table|json`, and
 * returns the exit code.
 */
import type { CommandConfig, Config } from '../config/config.js';
import type { Pool } from '../pool/pools-file.js';
import { formatDuration } from '../text/duration.js';
import type { LeaseRecord, LeaseStore, PoolStats } from '../pool/store.js';
import { formatBar, formatLegend, print, type BarPart, type BarStyle, type Out } from './output.js';

export interface CommandIo {
  readonly stdout: Out;
  readonly stderr: Out;
  /** How `pools` draws its bars (output.ts `barStyleFor`); ASCII when absent. */
  readonly style?: BarStyle | undefined;
}

export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, NOT_IMPLEMENTED: 3 } as const;

type Cmd<N extends CommandConfig['name']> = Extract<CommandConfig, { name: N }>;

const poolOf = (config: Config, name: string): Pool => {
  const pool = config.pools.pools.get(name);
  if (pool === undefined) throw new Error(`unknown pool "${name}"`);
  return pool;
};

/** The memory store starts empty in every process: lay its pools out before use. */
const prepare = async (config: Config, store: LeaseStore): Promise<void> => {
  if (store.kind !== 'memory') return;
  for (const pool of config.pools.pools.values())
    await store.ensurePool(pool, { initialize: true });
};

interface PoolRow {
  readonly pool: Pool;
  readonly stats?: PoolStats | undefined;
  readonly state: string;
}

const poolRow = async (
  store: LeaseStore,
  pool: Pool,
  reuseCooldownMs: number,
): Promise<PoolRow> => {
  try {
    const epoch = await store.epoch(pool);
    if (epoch === undefined) return { pool, state: 'uninitialised' };
    return { pool, stats: await store.stats(pool, { reuseCooldownMs }), state: 'ready' };
  } catch (err) {
    return { pool, state: `error: ${err instanceof Error ? err.message : String(err)}` };
  }
};

/** Width of the `pools` usage bar, in characters. */
export const POOL_BAR_WIDTH = 20;

/** The parts of a pool's bar, in the order and with the labels of its legend. */
export const poolBarParts = (s: PoolStats, reuseCooldownMs: number): BarPart[] => {
  const withPod = s.pending + s.bound;
  return [
    { count: withPod, label: 'leased by a pod' },
    { count: Math.max(0, s.leased - withPod), label: 'reserved, no pod' },
    { count: s.cooling, label: `released, cooling down (${formatDuration(reuseCooldownMs)})` },
    { count: s.free, label: 'free' },
  ];
};

export const runPools = async (
  config: Config,
  store: LeaseStore,
  io: CommandIo,
): Promise<number> => {
  await prepare(config, store);
  const only = config.command.name === 'pools' ? config.command.pool : undefined;
  const pools = only === undefined ? [...config.pools.pools.values()] : [poolOf(config, only)];
  const rows = await Promise.all(pools.map(p => poolRow(store, p, config.reuseCooldownMs)));
  const style = io.style ?? 'ascii';
  const legendOf = rows.find(r => r.stats !== undefined)?.stats;
  const data = rows.map(r => ({
    name: r.pool.name,
    family: r.pool.family,
    cidr: r.pool.cidrText,
    ranges: r.pool.ranges,
    exclude: r.pool.exclude,
    gateway: r.pool.gateway,
    namespaces: r.pool.namespaces,
    default: r.pool.isDefault,
    state: r.state,
    stats: r.stats,
  }));
  print(io.stdout, config.output, {
    data: data,
    rows: rows.map(r => ({
      pool: r.pool.name,
      size: r.stats?.size ?? r.pool.layout.size,
      leased: r.stats?.leased,
      pending: r.stats?.pending,
      reserved: r.stats?.reserved,
      cooling: r.stats?.cooling,
      free: r.stats?.free,
      usage:
        r.stats === undefined
          ? `(${r.state})`
          : formatBar(poolBarParts(r.stats, config.reuseCooldownMs), POOL_BAR_WIDTH, style),
    })),
    columns: ['pool', 'size', 'leased', 'pending', 'reserved', 'cooling', 'free', 'usage'],
    legend:
      legendOf === undefined
        ? undefined
        : `usage: ${formatLegend(poolBarParts(legendOf, config.reuseCooldownMs), style)}`,
  });
  return rows.some(r => r.state.startsWith('error')) ? EXIT.FAILED : EXIT.OK;
};

type InitOutcome = 'initialised' | 'exists' | 'has-state';

/** One pool of `podlease pools init`: only a pool with no state at all is initialised. */
const initOne = async (store: LeaseStore, pool: Pool): Promise<InitOutcome> => {
  if ((await store.epoch(pool)) !== undefined) return 'exists';
  const [leases, reservations] = await Promise.all([store.leases(pool), store.reservations(pool)]);
  if (leases.length > 0 || reservations.length > 0) return 'has-state';
  const result = await store.ensurePool(pool, { initialize: true });
  return result === 'created' ? 'initialised' : 'exists';
};

const INIT_TEXT: Readonly<Record<InitOutcome, string>> = {
  initialised: 'initialised: addresses are handed out from now on',
  exists: 'refused: the pool is initialised already; nothing changed',
  'has-state':
    'refused: the pool has leases or reservations but no epoch (a rebuild is under way or was ' +
    'interrupted); run `podlease rebuild` with access to the API server instead',
};

/**
 * `podlease pools init`: the operator's way to make pools ready where no controller runs (Redis
 * without an API server). Refuses a pool that exists: initialising over a wiped store that pods
 * still use would hand out their addresses again; that is a rebuild's job.
 */
export const runPoolsInit = async (
  config: Config,
  store: LeaseStore,
  cmd: Cmd<'pools'>,
  io: CommandIo,
): Promise<number> => {
  const pools =
    cmd.pool !== undefined ? [poolOf(config, cmd.pool)] : [...config.pools.pools.values()];
  const rows = [];
  for (const pool of pools) rows.push({ pool: pool.name, result: await initOne(store, pool) });
  print(io.stdout, config.output, {
    data: rows,
    rows: rows.map(r => ({ pool: r.pool, result: INIT_TEXT[r.result] })),
    columns: ['pool', 'result'],
  });
  return rows.every(r => r.result === 'initialised') ? EXIT.OK : EXIT.FAILED;
};

const podName = (l: LeaseRecord): string | undefined =>
  l.name ?? (l.generateName !== undefined ? `${l.generateName}*` : undefined);

export const runLeases = async (
  config: Config,
  store: LeaseStore,
  cmd: Cmd<'leases'>,
  io: CommandIo,
): Promise<number> => {
  await prepare(config, store);
  const pools =
    cmd.pool !== undefined ? [poolOf(config, cmd.pool)] : [...config.pools.pools.values()];
  const all = (await Promise.all(pools.map(p => store.leases(p)))).flat();
  // A stable order (Redis returns a hash in no particular order): by pool, then age, then id.
  const leases = all
    .filter(l => cmd.namespace === undefined || l.namespace === cmd.namespace)
    .sort(
      (a, b) =>
        a.pool.localeCompare(b.pool) || a.createdAt - b.createdAt || a.id.localeCompare(b.id),
    );
  const now = Date.now();
  print(io.stdout, config.output, {
    data: leases,
    rows: leases.map(l => ({
      pool: l.pool,
      lease: l.id,
      ip: l.ip,
      state: l.state,
      namespace: l.namespace,
      pod: podName(l),
      sticky: l.stickyKey,
      expires:
        l.expiresAt === undefined
          ? undefined
          : `${Math.max(0, Math.round((l.expiresAt - now) / 1000))}s`,
    })),
    columns: ['pool', 'lease', 'ip', 'state', 'namespace', 'pod', 'sticky', 'expires'],
  });
  return EXIT.OK;
};

/** The namespace of a sticky key `<namespace>/<statefulset>/<ordinal>`. */
const keyNamespace = (key: string): string => key.slice(0, Math.max(0, key.indexOf('/')));

export const runReservations = async (
  config: Config,
  store: LeaseStore,
  cmd: Cmd<'reservations'>,
  io: CommandIo,
): Promise<number> => {
  await prepare(config, store);
  const pools =
    cmd.pool !== undefined ? [poolOf(config, cmd.pool)] : [...config.pools.pools.values()];
  const all = (await Promise.all(pools.map(p => store.reservations(p)))).flat();
  // A stable order (Redis returns a hash in no particular order): by pool, then key, ordinals
  // in numeric order (web/2 before web/10).
  const reservations = all
    .filter(r => cmd.namespace === undefined || keyNamespace(r.key) === cmd.namespace)
    .sort(
      (a, b) => a.pool.localeCompare(b.pool) || a.key.localeCompare(b.key, 'en', { numeric: true }),
    );
  print(io.stdout, config.output, {
    data: reservations,
    rows: reservations.map(r => ({ pool: r.pool, key: r.key, ip: r.ip, lease: r.leaseId })),
    columns: ['pool', 'key', 'ip', 'lease'],
  });
  return EXIT.OK;
};

export const runReserve = async (
  config: Config,
  store: LeaseStore,
  cmd: Cmd<'reserve'>,
  io: CommandIo,
): Promise<number> => {
  await prepare(config, store);
  const r = await store.reserve(poolOf(config, cmd.pool), cmd.key, cmd.ip, {
    reuseCooldownMs: config.reuseCooldownMs,
  });
  print(io.stdout, config.output, {
    data: r,
    rows: [{ pool: r.pool, key: r.key, ip: r.ip, lease: r.leaseId }],
    columns: ['pool', 'key', 'ip', 'lease'],
  });
  return EXIT.OK;
};

export const runRelease = async (
  config: Config,
  store: LeaseStore,
  cmd: Cmd<'release'>,
  io: CommandIo,
): Promise<number> => {
  await prepare(config, store);
  const r = await store.release(poolOf(config, cmd.pool), cmd.leaseId);
  const result = { pool: cmd.pool, lease: cmd.leaseId, ...r };
  print(io.stdout, config.output, {
    data: result,
    rows: [
      {
        pool: cmd.pool,
        lease: cmd.leaseId,
        released: r.released,
        ip: r.ip,
        kept: r.keptByReservation,
        reason: r.reason,
      },
    ],
    columns: ['pool', 'lease', 'released', 'ip', 'kept', 'reason'],
  });
  return EXIT.OK;
};

export const runUnreserve = async (
  config: Config,
  store: LeaseStore,
  cmd: Cmd<'unreserve'>,
  io: CommandIo,
): Promise<number> => {
  await prepare(config, store);
  const r = await store.unreserve(poolOf(config, cmd.pool), cmd.key);
  print(io.stdout, config.output, {
    data: { pool: cmd.pool, key: cmd.key, ...r },
    rows: [{ pool: cmd.pool, key: cmd.key, removed: r.removed, ip: r.ip, freed: r.freed }],
    columns: ['pool', 'key', 'removed', 'ip', 'freed'],
  });
  return EXIT.OK;
};
