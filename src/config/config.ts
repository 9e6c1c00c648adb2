/**
 * `podlease` configuration: its shape, its defaults, the flags of each command, and their
 * validation. The command line itself is read by flags.ts (`node:util` `parseArgs`); each flag
 * is also an environment variable `PODLEASE_<FLAG>` (dashes as underscores), plus `REDIS_URL`
 * and `KUBECONFIG` (docs/design.md §6). Parsed once by `loadConfig`, validated fully (every
 * problem reported at once in one ConfigError), canonicalised (durations in ms, sizes in bytes,
 * addresses in canonical form) and frozen. Apart from the CNI plugin's entry, nothing else under
 * src/ reads `process.env`.
 */
import { readFileSync } from 'node:fs';
import { canonicalIp } from '../ip/address.js';
import { DEV_POOLS_DOCUMENT, parsePoolsText, toPoolSet, type PoolSet } from '../pool/pools-file.js';
import { DEFAULT_LEASE_TTL_MS, DEFAULT_REUSE_COOLDOWN_MS } from '../pool/store.js';
import { LOG_LEVELS, type LogLevel } from '../log/logger.js';
import { ConfigError } from './errors.js';
import {
  argFlag,
  envName,
  readCommandLine,
  switchFlag,
  valueFlag,
  type CommandLine,
  type CommandName,
  type FlagSpec,
} from './flags.js';
import { parseDuration, parseHostPort, parseSize, type HostPort } from './parse.js';
import { loadRedis, REDIS_FLAGS, redisFlagsGiven, type RedisConfig } from './redis.js';

export const DEFAULTS = {
  listen: '0.0.0.0:9443',
  metricsListen: '0.0.0.0:8080',
  tlsCert: 'certs/tls.crt',
  tlsKey: 'certs/tls.key',
  tlsReloadIntervalMs: 10_000,
  leaseTtlMs: DEFAULT_LEASE_TTL_MS,
  pendingTakeoverMs: 30_000,
  storeTimeoutMs: 2_000,
  bodyLimitBytes: 8 * 1_048_576,
  serviceAccount: 'system:serviceaccount:podlease:podlease',
  shutdownGraceMs: 10_000,
  shutdownDelayMs: 5_000,
  statefulSetCreators: [
    'system:serviceaccount:kube-system:statefulset-controller',
    'system:kube-controller-manager',
  ],
  statsCacheMs: 5_000,
  reconcileIntervalMs: 5 * 60_000,
  rebuildSettleMs: 5_000,
  leaderLeaseDurationMs: 15_000,
  leaderLeaseName: 'podlease-controller',
  keepAliveTimeoutMs: 90_000,
  headersTimeoutMs: 32_000,
  logLevel: 'info',
  reuseCooldownMs: DEFAULT_REUSE_COOLDOWN_MS,
} as const;

export type OutputFormat = 'table' | 'json';
export type ControllerMode = 'auto' | 'on' | 'off';

export interface StoreConfig {
  readonly kind: 'memory' | 'redis';
  readonly redisUrl: string | undefined;
  /** Where Redis is and how to reach it (docs/redis.md); set when `kind` is redis. */
  readonly redis?: RedisConfig | undefined;
  /** Longest wait for one store call before answering "store unavailable". */
  readonly timeoutMs: number;
}

/** The slice of the config the admission webhook gets (`createApp({ config: config.serve.webhook })`). */
export interface WebhookConfig {
  readonly leaseTtlMs: number;
  readonly storeTimeoutMs: number;
  readonly bodyLimitBytes: number;
  /** The username of podlease's own service account: the only one allowed to change owned annotations. */
  readonly serviceAccount: string;
  /**
   * A pending lease made for a pod name may be taken over by a new admission of that name only
   * once it is this old (and the pod does not exist): an older create may still be in flight.
   */
  readonly pendingTakeoverMs?: number | undefined;
  /** The usernames that may create StatefulSet pods, i.e. pods that get sticky addresses. */
  readonly statefulSetCreators: readonly string[];
  /** How long a released address rests before it is handed out again (`--reuse-cooldown`). */
  readonly reuseCooldownMs?: number | undefined;
}

export interface TlsConfig {
  readonly certPath: string;
  readonly keyPath: string;
  /** Both paths are the defaults: `serve` may generate dev certificates there. */
  readonly isDefault: boolean;
  readonly reloadIntervalMs: number;
}

/** The lifecycle controller inside `podlease serve` (docs/design.md §7). */
export interface ControllerConfig {
  readonly mode: ControllerMode;
  readonly reconcileIntervalMs: number;
  /** After noticing a pool without epoch, wait this long (admissions in flight) before listing. */
  readonly rebuildSettleMs: number;
  /** Namespace of the leader-election Lease: flag, else POD_NAMESPACE, else the service account's. */
  readonly leaderNamespace: string | undefined;
  readonly leaderLeaseName: string;
  readonly leaderLeaseDurationMs: number;
  /** This replica in the Lease: POD_NAME (else the host name) plus a random suffix. */
  readonly identity: string | undefined;
}

export interface ServeConfig {
  readonly listen: HostPort;
  readonly metricsListen: HostPort;
  readonly tls: TlsConfig;
  readonly controller: ControllerMode;
  readonly controllerConfig: ControllerConfig;
  readonly webhook: WebhookConfig;
  readonly shutdownGraceMs: number;
  /** After SIGTERM: unready but still serving, so the API server moves to other replicas. */
  readonly shutdownDelayMs: number;
  readonly statsCacheMs: number;
  /** `--ui-listen`: the read-only pool map (plain HTTP); undefined: off (the default). */
  readonly uiListen: HostPort | undefined;
  readonly keepAliveTimeoutMs: number;
  readonly headersTimeoutMs: number;
}

export type CommandConfig =
  | { readonly name: 'serve' }
  | { readonly name: 'pools'; readonly init: boolean; readonly pool?: string | undefined }
  | {
      readonly name: 'leases';
      readonly pool?: string | undefined;
      readonly namespace?: string | undefined;
    }
  | {
      readonly name: 'reserve';
      readonly pool: string;
      readonly key: string;
      readonly ip?: string | undefined;
    }
  | {
      readonly name: 'reservations';
      readonly pool?: string | undefined;
      readonly namespace?: string | undefined;
    }
  | { readonly name: 'release'; readonly pool: string; readonly leaseId: string }
  | { readonly name: 'unreserve'; readonly pool: string; readonly key: string }
  | { readonly name: 'check'; readonly fix: boolean; readonly pool?: string | undefined }
  | { readonly name: 'rebuild'; readonly pool?: string | undefined }
  | { readonly name: 'help'; readonly topic?: string | undefined }
  | { readonly name: 'version' };

export interface KubeConfigSource {
  /** Path from `--kubeconfig` or `KUBECONFIG`. */
  readonly kubeconfig: string | undefined;
  /** Running in a pod with a service account (KUBERNETES_SERVICE_HOST is set). */
  readonly inCluster: boolean;
}

export interface Config {
  readonly command: CommandConfig;
  readonly store: StoreConfig;
  readonly pools: PoolSet;
  /** Where the pools came from: a path, or `built-in dev pool`. */
  readonly poolsSource: string;
  readonly output: OutputFormat;
  readonly logLevel: LogLevel;
  readonly kube: KubeConfigSource;
  readonly serve: ServeConfig;
  /** `--reuse-cooldown`: allocation (serve, reserve) waits it out, `pools` counts it. */
  readonly reuseCooldownMs: number;
}

export interface ConfigIo {
  readonly readFile: (path: string) => string;
}

/** Flags every command takes: where the store and the pools are, and how to print. */
export const GLOBAL_FLAGS: Readonly<Record<string, FlagSpec>> = {
  store: valueFlag(
    'lease store: redis | memory (default: redis when REDIS_URL, --redis-sentinels or --redis-cluster is set, else memory)',
  ),
  pools: valueFlag('pools file, YAML or JSON (default: built-in dev pool 10.244.0.0/16)'),
  'store-timeout': valueFlag('longest wait for one store call, e.g. 2s'),
  output: { ...valueFlag('table | json'), short: 'o' },
  'log-level': valueFlag(`log level: ${LOG_LEVELS.join(' | ')}`),
  kubeconfig: valueFlag('kubeconfig file (also KUBECONFIG); in a pod the service account is used'),
  ...REDIS_FLAGS,
  'reuse-cooldown': valueFlag(
    'how long a released address rests before it is leased again, e.g. 60s (0: none)',
  ),
  help: { ...switchFlag('print help'), short: 'h' },
};

export const SERVE_FLAGS: Readonly<Record<string, FlagSpec>> = {
  listen: valueFlag(`HTTPS for /mutate and /validate (default ${DEFAULTS.listen})`),
  'metrics-listen': valueFlag(
    `plain HTTP for /metrics, /healthz, /readyz (default ${DEFAULTS.metricsListen})`,
  ),
  'tls-cert': valueFlag(`serving certificate, reloaded on change (default ${DEFAULTS.tlsCert})`),
  'tls-key': valueFlag(`serving key, reloaded on change (default ${DEFAULTS.tlsKey})`),
  'tls-reload-interval': valueFlag('how often the certificate files are checked, e.g. 10s'),
  controller: valueFlag(
    'auto | on | off: run the lease controller (auto: when an API server is configured)',
  ),
  'reconcile-interval': valueFlag('how often the controller audits every lease, e.g. 5m'),
  'rebuild-settle': valueFlag(
    'wait after a pool is found without state before rebuilding it from pods, e.g. 5s',
  ),
  'leader-elect-namespace': valueFlag(
    "namespace of the controller's leader Lease (default: POD_NAMESPACE, else the pod's own)",
  ),
  'leader-elect-lease': valueFlag(
    `name of the controller's leader Lease (default ${DEFAULTS.leaderLeaseName})`,
  ),
  'leader-lease-duration': valueFlag('how long a dead leader keeps the Lease, e.g. 15s'),
  'lease-ttl': valueFlag('how long a pending lease waits to be bound, e.g. 15m'),
  'pending-takeover-after': valueFlag(
    'age after which a pending lease of a pod name that does not exist may go to a new pod of that name, e.g. 30s',
  ),
  'body-limit': valueFlag('largest AdmissionReview body accepted, e.g. 8Mi'),
  'service-account': valueFlag(
    `username allowed to change podlease annotations (default ${DEFAULTS.serviceAccount})`,
  ),
  'statefulset-creators': valueFlag(
    `comma list of usernames that create StatefulSet pods (default ${DEFAULTS.statefulSetCreators.join(',')})`,
  ),
  'shutdown-delay': valueFlag(
    'after SIGTERM, how long to keep serving while unready before closing, e.g. 5s (0: none)',
  ),
  'shutdown-grace': valueFlag('how long SIGTERM waits for requests in flight, e.g. 10s'),
  'stats-cache': valueFlag('how long pool gauges are cached between scrapes, e.g. 5s'),
  'ui-listen': valueFlag(
    'plain HTTP for the read-only pool map: a port (on 127.0.0.1) or host:port (default off)',
  ),
};

const COMMAND_FLAGS: Readonly<Record<CommandName, Readonly<Record<string, FlagSpec>>>> = {
  serve: SERVE_FLAGS,
  pools: { pool: argFlag('only this pool (pools init: initialise only this one)') },
  leases: { pool: argFlag('only this pool'), namespace: argFlag('only pods of this namespace') },
  reservations: {
    pool: argFlag('only this pool'),
    namespace: argFlag('only sticky keys of this namespace'),
  },
  reserve: {
    pool: argFlag('pool'),
    key: argFlag('sticky key <namespace>/<statefulset>/<ordinal>'),
    ip: argFlag('exact address (default: next free)'),
  },
  release: {
    pool: argFlag('pool'),
    lease: argFlag('lease id, or <pool>/<id> as in podlease.io/lease'),
  },
  unreserve: {
    pool: argFlag('pool'),
    key: argFlag('sticky key <namespace>/<statefulset>/<ordinal>'),
  },
  check: {
    fix: switchFlag('repair what is safe to repair (never a conflict)'),
    pool: argFlag('only this pool'),
  },
  rebuild: { pool: argFlag('only this pool') },
  help: {},
  version: {},
};

export const commandFlags = (command: CommandName): Readonly<Record<string, FlagSpec>> => ({
  ...GLOBAL_FLAGS,
  ...COMMAND_FLAGS[command],
});

type Env = Readonly<Record<string, string | undefined>>;

/** Looks a flag up on the command line, then in `PODLEASE_<FLAG>`, and collects the problems. */
class Lookup {
  private readonly line: CommandLine;
  private readonly env: Env;
  readonly issues: string[];
  constructor(line: CommandLine, env: Env, issues: string[]) {
    this.line = line;
    this.env = env;
    this.issues = issues;
  }

  raw(flag: string): string | undefined {
    const fromArgv = this.line.flags.get(flag);
    if (typeof fromArgv === 'string') return fromArgv;
    if (fromArgv === true) return 'true';
    const spec = commandFlags(this.line.command)[flag];
    if (spec?.env !== true) return undefined;
    const fromEnv = this.env[envName(flag)];
    return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
  }

  /** Where a value came from, for messages. */
  origin(flag: string): string {
    return this.line.flags.has(flag) ? `--${flag}` : envName(flag);
  }

  parsed<T>(flag: string, fallback: T, parse: (s: string) => T | undefined, expected: string): T {
    const text = this.raw(flag);
    if (text === undefined) return fallback;
    const value = parse(text);
    if (value === undefined) {
      this.issues.push(`${this.origin(flag)}: "${text}" is not ${expected}`);
      return fallback;
    }
    return value;
  }

  oneOf<T extends string>(flag: string, allowed: readonly T[], fallback: T): T {
    return this.parsed(
      flag,
      fallback,
      s => ((allowed as readonly string[]).includes(s) ? (s as T) : undefined),
      `one of ${allowed.join(', ')}`,
    );
  }
}

const loadPools = (look: Lookup, io: ConfigIo): { pools: PoolSet; source: string } | undefined => {
  const path = look.raw('pools');
  if (path === undefined)
    return {
      pools: toPoolSet(DEV_POOLS_DOCUMENT, 'built-in dev pool'),
      source: 'built-in dev pool',
    };
  let text: string;
  try {
    text = io.readFile(path);
  } catch (err) {
    look.issues.push(
      `${look.origin('pools')}: cannot read pools file ${path}: ${(err as Error).message}`,
    );
    return undefined;
  }
  try {
    return { pools: parsePoolsText(text, path), source: path };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    look.issues.push(...err.issues.map(i => `pools file ${path}: ${i}`));
    return undefined;
  }
};

const positiveDuration = (s: string): number | undefined => {
  const ms = parseDuration(s);
  return ms !== undefined && ms > 0 ? ms : undefined;
};

/** What is wrong with the store's kind and the Redis it names. */
const storeIssues = (
  look: Lookup,
  kind: 'memory' | 'redis',
  named: boolean,
  redisUrl: string | undefined,
): void => {
  if (kind === 'redis' && !named) {
    look.issues.push(
      `${look.origin('store')} redis: set REDIS_URL, e.g. REDIS_URL=redis://127.0.0.1:6379, ` +
        'or --redis-sentinels with --redis-sentinel-master, or --redis-cluster',
    );
  }
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    look.issues.push(`REDIS_URL: "${redisUrl}" is not a redis:// or rediss:// URL`);
  }
  const given = redisFlagsGiven(look).map(f => look.origin(f));
  if (kind === 'memory' && given.length > 0) {
    look.issues.push(
      named
        ? `${given.join(', ')}: Redis flags with --store memory`
        : `${given.join(', ')}: no Redis is named (REDIS_URL, --redis-sentinels or --redis-cluster)`,
    );
  }
};

const loadStore = (look: Lookup, env: Env, io: ConfigIo): StoreConfig => {
  const redisUrl = env.REDIS_URL === '' ? undefined : env.REDIS_URL;
  const redis = loadRedis(look, redisUrl, io.readFile);
  const named =
    redisUrl !== undefined ||
    ['redis-sentinels', 'redis-sentinel-master', 'redis-cluster'].some(
      f => look.raw(f) !== undefined,
    );
  const kind = look.oneOf<'memory' | 'redis'>(
    'store',
    ['memory', 'redis'],
    named ? 'redis' : 'memory',
  );
  storeIssues(look, kind, named, redisUrl);
  const timeoutMs = look.parsed(
    'store-timeout',
    DEFAULTS.storeTimeoutMs,
    positiveDuration,
    'a duration such as 2s or 500ms',
  );
  return {
    kind,
    redisUrl: kind === 'redis' ? redisUrl : undefined,
    redis: kind === 'redis' ? redis : undefined,
    timeoutMs,
  };
};

/**
 * `--ui-listen`: `off`, a bare port (on 127.0.0.1: reach it with `kubectl port-forward`), or
 * `host:port` as for the other listeners. `{ off: true }` for off, undefined when malformed.
 */
const parseUiListen = (s: string): HostPort | { off: true } | undefined => {
  const t = s.trim();
  if (t === 'off' || t === 'false') return { off: true };
  if (/^\d{1,5}$/.test(t)) return parseHostPort(`127.0.0.1:${t}`);
  return parseHostPort(t);
};

const usernameList = (s: string): readonly string[] | undefined => {
  const names = s.split(',').map(n => n.trim());
  return names.some(n => n === '') ? undefined : names;
};

const loadReuseCooldown = (look: Lookup): number =>
  look.parsed(
    'reuse-cooldown',
    DEFAULTS.reuseCooldownMs,
    parseDuration,
    'a duration such as 60s, or 0',
  );

const uiListenOf = (look: Lookup): HostPort | undefined => {
  const v = look.parsed<HostPort | { off: true }>(
    'ui-listen',
    { off: true },
    parseUiListen,
    'off, a port (on 127.0.0.1) or host:port, e.g. 8081 or 127.0.0.1:8081',
  );
  return 'off' in v ? undefined : v;
};

const loadServe = (
  look: Lookup,
  storeTimeoutMs: number,
  reuseCooldownMs: number,
  env: Env = {},
): ServeConfig => {
  const hostPort = (flag: string, fallback: string): HostPort =>
    look.parsed(
      flag,
      parseHostPort(fallback) ?? { host: '0.0.0.0', port: 0 },
      parseHostPort,
      'host:port, e.g. 0.0.0.0:9443',
    );
  const certPath = look.raw('tls-cert') ?? DEFAULTS.tlsCert;
  const keyPath = look.raw('tls-key') ?? DEFAULTS.tlsKey;
  const duration = (flag: string, fallback: number): number =>
    look.parsed(flag, fallback, positiveDuration, 'a positive duration such as 15m, 10s or 500ms');
  return {
    listen: hostPort('listen', DEFAULTS.listen),
    metricsListen: hostPort('metrics-listen', DEFAULTS.metricsListen),
    tls: {
      certPath,
      keyPath,
      isDefault: look.raw('tls-cert') === undefined && look.raw('tls-key') === undefined,
      reloadIntervalMs: duration('tls-reload-interval', DEFAULTS.tlsReloadIntervalMs),
    },
    controller: look.oneOf<ControllerMode>('controller', ['auto', 'on', 'off'], 'auto'),
    controllerConfig: {
      mode: look.oneOf<ControllerMode>('controller', ['auto', 'on', 'off'], 'auto'),
      reconcileIntervalMs: duration('reconcile-interval', DEFAULTS.reconcileIntervalMs),
      rebuildSettleMs: look.parsed(
        'rebuild-settle',
        DEFAULTS.rebuildSettleMs,
        parseDuration,
        'a duration such as 5s, or 0',
      ),
      leaderNamespace: look.raw('leader-elect-namespace') ?? nonEmpty(env.POD_NAMESPACE),
      leaderLeaseName: look.raw('leader-elect-lease') ?? DEFAULTS.leaderLeaseName,
      leaderLeaseDurationMs: duration('leader-lease-duration', DEFAULTS.leaderLeaseDurationMs),
      identity: nonEmpty(env.POD_NAME),
    },
    webhook: {
      leaseTtlMs: duration('lease-ttl', DEFAULTS.leaseTtlMs),
      pendingTakeoverMs: duration('pending-takeover-after', DEFAULTS.pendingTakeoverMs),
      storeTimeoutMs,
      bodyLimitBytes: look.parsed(
        'body-limit',
        DEFAULTS.bodyLimitBytes,
        parseSize,
        'a size such as 8Mi or 512kb',
      ),
      serviceAccount: look.raw('service-account') ?? DEFAULTS.serviceAccount,
      statefulSetCreators: look.parsed(
        'statefulset-creators',
        DEFAULTS.statefulSetCreators,
        usernameList,
        'a comma-separated list of usernames',
      ),
      reuseCooldownMs,
    },
    shutdownGraceMs: duration('shutdown-grace', DEFAULTS.shutdownGraceMs),
    shutdownDelayMs: look.parsed(
      'shutdown-delay',
      DEFAULTS.shutdownDelayMs,
      parseDuration,
      'a duration such as 5s, or 0',
    ),
    statsCacheMs: duration('stats-cache', DEFAULTS.statsCacheMs),
    uiListen: uiListenOf(look),
    keepAliveTimeoutMs: DEFAULTS.keepAliveTimeoutMs,
    headersTimeoutMs: DEFAULTS.headersTimeoutMs,
  };
};

const STICKY_KEY = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-.a-z0-9]*[a-z0-9])?\/\d+$/;

const requirePool = (
  look: Lookup,
  pools: PoolSet | undefined,
  required: boolean,
): string | undefined => {
  const name = look.raw('pool');
  if (name === undefined) {
    if (required) look.issues.push('--pool is required');
    return undefined;
  }
  if (pools !== undefined && !pools.pools.has(name)) {
    look.issues.push(
      `--pool: unknown pool "${name}"; known pools: ${[...pools.pools.keys()].join(', ')}`,
    );
  }
  return name;
};

const requireKey = (look: Lookup): string => {
  const key = look.raw('key');
  if (key === undefined)
    look.issues.push('--key is required: <namespace>/<statefulset>/<ordinal>, e.g. default/web/0');
  else if (!STICKY_KEY.test(key))
    look.issues.push(
      `--key: "${key}" is not <namespace>/<statefulset>/<ordinal>, e.g. default/web/0`,
    );
  return key ?? '';
};

const loadRelease = (look: Lookup, pools: PoolSet | undefined): CommandConfig => {
  const lease = look.raw('lease');
  if (lease === undefined) {
    look.issues.push('--lease is required: the lease id, or <pool>/<id> as in podlease.io/lease');
    return { name: 'release', pool: '', leaseId: '' };
  }
  const slash = lease.indexOf('/');
  if (slash > 0 && look.raw('pool') === undefined) {
    const pool = lease.slice(0, slash);
    if (pools !== undefined && !pools.pools.has(pool)) {
      look.issues.push(
        `--lease: unknown pool "${pool}"; known pools: ${[...pools.pools.keys()].join(', ')}`,
      );
    }
    return { name: 'release', pool, leaseId: lease.slice(slash + 1) };
  }
  const pool = requirePool(look, pools, true) ?? '';
  return { name: 'release', pool, leaseId: slash > 0 ? lease.slice(slash + 1) : lease };
};

const loadReserve = (look: Lookup, pools: PoolSet | undefined): CommandConfig => {
  const pool = requirePool(look, pools, true) ?? '';
  const key = requireKey(look);
  const ip = look.raw('ip');
  const canonical = ip === undefined ? undefined : canonicalIp(ip);
  if (ip !== undefined && canonical === undefined) {
    look.issues.push(`--ip: "${ip}" is not an IP address`);
  }
  return { name: 'reserve', pool, key, ip: canonical };
};

const loadCommand = (
  line: CommandLine,
  look: Lookup,
  pools: PoolSet | undefined,
): CommandConfig => {
  switch (line.command) {
    case 'pools':
      return {
        name: 'pools',
        init: line.positional[0] === 'init',
        pool: requirePool(look, pools, false),
      };
    case 'leases':
      return {
        name: 'leases',
        pool: requirePool(look, pools, false),
        namespace: look.raw('namespace'),
      };
    case 'reservations':
      return {
        name: 'reservations',
        pool: requirePool(look, pools, false),
        namespace: look.raw('namespace'),
      };
    case 'reserve':
      return loadReserve(look, pools);
    case 'release':
      return loadRelease(look, pools);
    case 'unreserve':
      return {
        name: 'unreserve',
        pool: requirePool(look, pools, true) ?? '',
        key: requireKey(look),
      };
    case 'check':
      return { name: 'check', fix: line.flags.has('fix'), pool: requirePool(look, pools, false) };
    case 'rebuild':
      return { name: 'rebuild', pool: requirePool(look, pools, false) };
    case 'help':
      return { name: 'help', topic: line.positional[0] };
    default:
      return { name: line.command };
  }
};

const deepFreeze = <T>(o: T): T => {
  if (typeof o === 'object' && o !== null && !Object.isFrozen(o) && !(o instanceof Map)) {
    Object.freeze(o);
    for (const value of Object.values(o)) deepFreeze(value);
  }
  return o;
};

const defaultIo: ConfigIo = { readFile: path => readFileSync(path, 'utf8') };

/**
 * Parses the command line and environment once. Returns a frozen Config or throws ConfigError
 * listing every problem.
 */
export const loadConfig = (argv: readonly string[], env: Env, io: ConfigIo = defaultIo): Config => {
  const line = readCommandLine(argv, commandFlags);
  const issues = [...line.issues];
  const look = new Lookup(line, env, issues);
  if (line.flags.has('help')) {
    const topic = line.command === 'help' ? line.positional[0] : line.command;
    return helpConfig(topic, look, env);
  }
  const extra =
    line.command === 'pools' && line.positional[0] === 'init'
      ? line.positional.slice(1)
      : line.positional;
  if (line.command !== 'help' && extra.length > 0) {
    issues.push(`unexpected argument(s): ${extra.join(' ')}`);
  }
  const store = loadStore(look, env, io);
  const loaded = loadPools(look, io);
  const command = loadCommand(line, look, loaded?.pools);
  const output = look.oneOf<OutputFormat>('output', ['table', 'json'], 'table');
  const logLevel = look.oneOf<LogLevel>('log-level', LOG_LEVELS, DEFAULTS.logLevel);
  const reuseCooldownMs = loadReuseCooldown(look);
  const serve = loadServe(look, store.timeoutMs, reuseCooldownMs, env);
  if (issues.length > 0 || loaded === undefined) {
    throw new ConfigError(line.command === 'help' ? 'podlease' : `podlease ${line.command}`, [
      ...new Set(issues),
    ]);
  }
  return deepFreeze({
    command,
    store,
    pools: loaded.pools,
    poolsSource: loaded.source,
    output,
    logLevel,
    kube: kubeSource(look, env),
    serve,
    reuseCooldownMs,
  });
};

const nonEmpty = (v: string | undefined): string | undefined =>
  v === undefined || v === '' ? undefined : v;

const kubeSource = (look: Lookup, env: Env): KubeConfigSource => ({
  kubeconfig: look.raw('kubeconfig') ?? (env.KUBECONFIG === '' ? undefined : env.KUBECONFIG),
  inCluster: (env.KUBERNETES_SERVICE_HOST ?? '') !== '',
});

/** `--help` never fails on other flags: it prints usage. */
const helpConfig = (topic: string | undefined, look: Lookup, env: Env): Config => {
  const quiet = new Lookup(
    { command: 'help', flags: new Map(), positional: [], issues: [] },
    {},
    [],
  );
  return deepFreeze({
    command: { name: 'help', topic },
    store: { kind: 'memory', redisUrl: undefined, timeoutMs: DEFAULTS.storeTimeoutMs },
    pools: toPoolSet(DEV_POOLS_DOCUMENT, 'built-in dev pool'),
    poolsSource: 'built-in dev pool',
    output: 'table',
    logLevel: DEFAULTS.logLevel,
    kube: kubeSource(look, env),
    serve: loadServe(quiet, DEFAULTS.storeTimeoutMs, DEFAULTS.reuseCooldownMs),
    reuseCooldownMs: DEFAULTS.reuseCooldownMs,
  });
};
