import { describe, expect, it } from 'vitest';
import { DEFAULTS, loadConfig, type Config } from '../../../src/config/config.js';
import { ConfigError } from '../../../src/config/errors.js';
import { parseDuration, parseHostPort, parseSize } from '../../../src/config/parse.js';

const files: Record<string, string> = {
  'pools.yaml':
    'pools:\n  - name: a\n    cidr: 10.9.0.0/24\n    default: true\n  - name: b\n    cidr: 10.8.0.0/24\n',
  'bad.yaml': 'pools:\n  - name: A\n    cidr: nope\n',
};
const io = {
  readFile: (p: string): string => {
    const f = files[p];
    if (f === undefined) throw new Error(`ENOENT: no such file, open '${p}'`);
    return f;
  },
};

const load = (argv: string[], env: Record<string, string> = {}): Config =>
  loadConfig(argv, env, io);
const issues = (argv: string[], env: Record<string, string> = {}): readonly string[] => {
  try {
    load(argv, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected a ConfigError');
};

describe('parsers', () => {
  it('parses Go-style durations to ms', () => {
    expect(parseDuration('15m')).toBe(900_000);
    expect(parseDuration('10s')).toBe(10_000);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('30')).toBe(30_000);
    for (const bad of ['', 'm', '-5s', '10x', '5s3', 'NaNs'])
      expect(parseDuration(bad)).toBeUndefined();
  });

  it('parses sizes and listen addresses', () => {
    expect(parseSize('8Mi')).toBe(8 * 1_048_576);
    expect(parseSize('64kb')).toBe(64_000);
    expect(parseSize('0')).toBeUndefined();
    expect(parseSize('3 parsecs')).toBeUndefined();
    expect(parseHostPort('0.0.0.0:9443')).toEqual({ host: '0.0.0.0', port: 9443 });
    expect(parseHostPort(':8080')).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(parseHostPort('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseHostPort('localhost:70000')).toBeUndefined();
    expect(parseHostPort('9443')).toBeUndefined();
  });
});

describe('loadConfig', () => {
  it('gives the docs/design.md §6 defaults: memory store, dev pool, 15m lease ttl', () => {
    const c = load(['serve']);
    expect(c.command).toEqual({ name: 'serve' });
    expect(c.store).toEqual({ kind: 'memory', redisUrl: undefined, timeoutMs: 2_000 });
    expect(c.serve.listen).toEqual({ host: '0.0.0.0', port: 9443 });
    expect(c.serve.metricsListen).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(c.serve.tls).toMatchObject({
      certPath: 'certs/tls.crt',
      keyPath: 'certs/tls.key',
      isDefault: true,
    });
    expect(c.serve.webhook.leaseTtlMs).toBe(900_000);
    expect(c.serve.webhook.serviceAccount).toBe('system:serviceaccount:podlease:podlease');
    expect(c.serve.controller).toBe('auto');
    expect(c.poolsSource).toBe('built-in dev pool');
    expect([...c.pools.pools.keys()]).toEqual(['default']);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.serve.webhook)).toBe(true);
  });

  it('picks redis when REDIS_URL is set, and reads flags from PODLEASE_* with the command line first', () => {
    const c = load(['serve', '--lease-ttl', '2m', '--metrics-listen=127.0.0.1:9090'], {
      REDIS_URL: 'redis://127.0.0.1:6379',
      PODLEASE_LEASE_TTL: '1h',
      PODLEASE_METRICS_LISTEN: '127.0.0.1:1',
      PODLEASE_STORE_TIMEOUT: '750ms',
      PODLEASE_SERVICE_ACCOUNT: 'system:serviceaccount:ipam:podlease',
      PODLEASE_POOLS: 'pools.yaml',
    });
    expect(c.store).toMatchObject({
      kind: 'redis',
      redisUrl: 'redis://127.0.0.1:6379',
      timeoutMs: 750,
      redis: { topology: { kind: 'single', url: 'redis://127.0.0.1:6379' }, minReplicas: 0 },
    });
    expect(c.serve.webhook.leaseTtlMs).toBe(120_000);
    expect(c.serve.webhook.storeTimeoutMs).toBe(750);
    expect(c.serve.metricsListen).toEqual({ host: '127.0.0.1', port: 9090 });
    expect(c.serve.webhook.serviceAccount).toBe('system:serviceaccount:ipam:podlease');
    expect(c.poolsSource).toBe('pools.yaml');
    expect([...c.pools.pools.keys()]).toEqual(['a', 'b']);
  });

  it('--store memory wins over REDIS_URL; --store redis needs REDIS_URL', () => {
    expect(load(['serve', '--store', 'memory'], { REDIS_URL: 'redis://x:1' }).store.kind).toBe(
      'memory',
    );
    expect(issues(['serve', '--store', 'redis'])).toEqual([
      expect.stringMatching(/--store redis: set REDIS_URL/),
    ]);
  });

  it('lists every problem at once', () => {
    const found = issues(
      [
        'serve',
        '--lease-ttl',
        'forever',
        '--listen',
        'nowhere',
        '--controller',
        'maybe',
        '--bogus',
        '-o',
        'yaml',
      ],
      { PODLEASE_BODY_LIMIT: 'huge', REDIS_URL: 'http://x' },
    );
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^unknown flag --bogus/),
        expect.stringMatching(/^--lease-ttl: "forever" is not a positive duration/),
        expect.stringMatching(/^--listen: "nowhere" is not host:port/),
        expect.stringMatching(/^--controller: "maybe" is not one of auto, on, off/),
        expect.stringMatching(/^--output: "yaml" is not one of table, json/),
        expect.stringMatching(/^PODLEASE_BODY_LIMIT: "huge" is not a size/),
        expect.stringMatching(/^REDIS_URL: "http:\/\/x" is not a redis:\/\//),
      ]),
    );
    expect(found).toHaveLength(7);
  });

  it('reports pools file problems naming the file, and an unreadable file', () => {
    expect(issues(['pools', '--pools', 'bad.yaml'])).toEqual(
      expect.arrayContaining([expect.stringMatching(/^pools file bad.yaml: pools\[0\].name/)]),
    );
    expect(issues(['pools', '--pools', 'missing.yaml'])).toEqual([
      expect.stringMatching(/cannot read pools file missing.yaml/),
    ]);
  });

  it('parses the store commands and checks pool names against the pools', () => {
    expect(
      load(['leases', '--pool', 'a', '--namespace', 'kube-system', '--pools', 'pools.yaml'])
        .command,
    ).toEqual({
      name: 'leases',
      pool: 'a',
      namespace: 'kube-system',
    });
    expect(
      load(['reserve', '--pool', 'default', '--key', 'default/web/0', '--ip', '10.244.0.50'])
        .command,
    ).toEqual({
      name: 'reserve',
      pool: 'default',
      key: 'default/web/0',
      ip: '10.244.0.50',
    });
    expect(issues(['reserve', '--pool', 'nope', '--key', 'web-0', '--ip', 'x'])).toEqual([
      expect.stringMatching(/--pool: unknown pool "nope"; known pools: default/),
      expect.stringMatching(/--key: "web-0" is not <namespace>\/<statefulset>\/<ordinal>/),
      '--ip: "x" is not an IP address',
    ]);
    expect(load(['release', '--lease', 'default/01JD3ZK8Q9R0S1T2V3W4X5Y6Z7']).command).toEqual({
      name: 'release',
      pool: 'default',
      leaseId: '01JD3ZK8Q9R0S1T2V3W4X5Y6Z7',
    });
    expect(load(['check', '--fix']).command).toEqual({ name: 'check', fix: true, pool: undefined });
    expect(load(['pools', '-o', 'json']).output).toBe('json');
  });

  it('does not read PODLEASE_* for per-command arguments such as --pool', () => {
    expect(load(['leases'], { PODLEASE_POOL: 'nope' }).command).toEqual({
      name: 'leases',
      pool: undefined,
      namespace: undefined,
    });
  });

  it('answers --help without validating the rest', () => {
    expect(load(['serve', '--help', '--lease-ttl', 'x']).command).toEqual({
      name: 'help',
      topic: 'serve',
    });
    expect(load([]).command).toEqual({ name: 'help', topic: undefined });
    expect(issues(['frobnicate'])).toEqual([expect.stringMatching(/unknown command "frobnicate"/)]);
  });

  it('knows the kubeconfig from --kubeconfig or KUBECONFIG, and in-cluster from the service env', () => {
    expect(load(['serve'], { KUBECONFIG: '/k' }).kube).toEqual({
      kubeconfig: '/k',
      inCluster: false,
    });
    expect(load(['serve'], { KUBERNETES_SERVICE_HOST: '10.96.0.1' }).kube).toEqual({
      kubeconfig: undefined,
      inCluster: true,
    });
  });

  it('reads the StatefulSet creators from --statefulset-creators or PODLEASE_STATEFULSET_CREATORS', () => {
    expect(load(['serve']).serve.webhook.statefulSetCreators).toEqual([
      'system:serviceaccount:kube-system:statefulset-controller',
      'system:kube-controller-manager',
    ]);
    expect(
      load(['serve', '--statefulset-creators', 'a, system:serviceaccount:x:y']).serve.webhook
        .statefulSetCreators,
    ).toEqual(['a', 'system:serviceaccount:x:y']);
    expect(
      load(['serve'], { PODLEASE_STATEFULSET_CREATORS: 'b' }).serve.webhook.statefulSetCreators,
    ).toEqual(['b']);
    expect(issues(['serve', '--statefulset-creators', 'a,,b'])).toEqual([
      '--statefulset-creators: "a,,b" is not a comma-separated list of usernames',
    ]);
  });

  it('reads --shutdown-delay (default 5s; 0 turns it off)', () => {
    expect(load(['serve']).serve.shutdownDelayMs).toBe(5_000);
    expect(load(['serve', '--shutdown-delay', '0']).serve.shutdownDelayMs).toBe(0);
    expect(load(['serve'], { PODLEASE_SHUTDOWN_DELAY: '1m' }).serve.shutdownDelayMs).toBe(60_000);
    expect(issues(['serve', '--shutdown-delay', 'soon'])).toEqual([
      '--shutdown-delay: "soon" is not a duration such as 5s, or 0',
    ]);
  });

  it('reads --reuse-cooldown for every command (default 60s; 0 turns it off)', () => {
    expect(load(['serve']).reuseCooldownMs).toBe(60_000);
    expect(DEFAULTS.reuseCooldownMs).toBe(60_000);
    expect(load(['serve']).serve.webhook.reuseCooldownMs).toBe(60_000);
    expect(load(['serve', '--reuse-cooldown', '0']).serve.webhook.reuseCooldownMs).toBe(0);
    expect(load(['pools'], { PODLEASE_REUSE_COOLDOWN: '2m' }).reuseCooldownMs).toBe(120_000);
    expect(
      load(['reserve', '--pool', 'default', '--key', 'a/b/0', '--reuse-cooldown=1.5s']),
    ).toMatchObject({ reuseCooldownMs: 1_500 });
    expect(issues(['pools', '--reuse-cooldown', 'a while'])).toEqual([
      '--reuse-cooldown: "a while" is not a duration such as 60s, or 0',
    ]);
  });

  it('parses reservations [--pool] [--namespace]', () => {
    expect(
      load(['reservations', '--pool', 'a', '--namespace', 'db', '--pools', 'pools.yaml']).command,
    ).toEqual({ name: 'reservations', pool: 'a', namespace: 'db' });
    expect(load(['reservations']).command).toEqual({
      name: 'reservations',
      pool: undefined,
      namespace: undefined,
    });
    expect(issues(['reservations', '--pool', 'nope'])).toEqual([
      expect.stringMatching(/--pool: unknown pool "nope"/),
    ]);
  });

  it('takes every default of serve from the one DEFAULTS object', () => {
    const c = load(['serve']);
    expect(c.store.timeoutMs).toBe(DEFAULTS.storeTimeoutMs);
    expect(c.serve.webhook).toMatchObject({
      leaseTtlMs: DEFAULTS.leaseTtlMs,
      pendingTakeoverMs: DEFAULTS.pendingTakeoverMs,
      bodyLimitBytes: DEFAULTS.bodyLimitBytes,
      serviceAccount: DEFAULTS.serviceAccount,
      statefulSetCreators: DEFAULTS.statefulSetCreators,
    });
    expect(c.serve.shutdownGraceMs).toBe(DEFAULTS.shutdownGraceMs);
    expect(c.serve.shutdownDelayMs).toBe(DEFAULTS.shutdownDelayMs);
  });
});
