import { describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../../src/config/config.js';
import { ConfigError } from '../../../src/config/errors.js';
import { parseNodeList } from '../../../src/config/redis.js';

const files: Record<string, string> = {
  '/run/secrets/redis-password': 's3cret\n',
  '/run/secrets/empty': '\n',
  '/etc/redis/ca.crt': '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
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

describe('Redis flags (docs/redis.md)', () => {
  it('Sentinel: the sentinels and the master name, the redis store by default', () => {
    const c = load([
      'serve',
      '--redis-sentinels',
      '10.0.0.1:26379, 10.0.0.2:26379,[fd00::3]:26379',
      '--redis-sentinel-master',
      'mymaster',
      '--redis-min-replicas',
      '1',
    ]);
    expect(c.store.kind).toBe('redis');
    expect(c.store.redis).toEqual({
      topology: {
        kind: 'sentinel',
        masterName: 'mymaster',
        sentinels: [
          { host: '10.0.0.1', port: 26379 },
          { host: '10.0.0.2', port: 26379 },
          { host: 'fd00::3', port: 26379 },
        ],
      },
      username: undefined,
      password: undefined,
      tls: false,
      caFile: undefined,
      ca: undefined,
      minReplicas: 1,
    });
  });

  it('Cluster from PODLEASE_REDIS_CLUSTER, with an ACL user, a password file and a CA (TLS)', () => {
    const c = load(['pools'], {
      PODLEASE_REDIS_CLUSTER: '127.0.0.1:7000,127.0.0.1:7001',
      PODLEASE_REDIS_USERNAME: 'podlease',
      PODLEASE_REDIS_PASSWORD_FILE: '/run/secrets/redis-password',
      PODLEASE_REDIS_CA_FILE: '/etc/redis/ca.crt',
    });
    expect(c.store.redis).toMatchObject({
      topology: { kind: 'cluster', nodes: [{ port: 7000 }, { port: 7001 }] },
      username: 'podlease',
      password: 's3cret',
      tls: true,
      ca: files['/etc/redis/ca.crt'],
    });
  });

  it('REDIS_URL: TLS from the scheme; --redis-tls must agree with it', () => {
    expect(load(['serve'], { REDIS_URL: 'rediss://r:6380' }).store.redis?.tls).toBe(true);
    expect(issues(['serve', '--redis-tls', 'true'], { REDIS_URL: 'redis://r:6379' })).toEqual([
      expect.stringMatching(/--redis-tls true disagrees with REDIS_URL: use rediss:\/\//),
    ]);
    expect(
      issues(['serve', '--redis-ca-file', '/etc/redis/ca.crt'], { REDIS_URL: 'redis://r:6379' }),
    ).toEqual([expect.stringMatching(/use a rediss:\/\/ REDIS_URL/)]);
  });

  it('reports every problem at once', () => {
    expect(
      issues(
        [
          'serve',
          '--redis-sentinels',
          'nope',
          '--redis-min-replicas=two',
          '--redis-password-file',
          '/missing',
        ],
        {},
      ),
    ).toEqual([
      expect.stringMatching(/--redis-sentinels: "nope" is not host:port/),
      '--redis-sentinels needs --redis-sentinel-master NAME',
      expect.stringMatching(/--redis-password-file: cannot read \/missing: ENOENT/),
      expect.stringMatching(/--redis-min-replicas: "two" is not a whole number/),
    ]);
  });

  it('one Redis at a time; a password once; no Redis flags for the memory store', () => {
    expect(issues(['serve', '--redis-cluster', 'a:1'], { REDIS_URL: 'redis://r:1' })).toEqual([
      'REDIS_URL and --redis-cluster: name one Redis, not 2',
    ]);
    expect(issues(['serve', '--redis-sentinel-master', 'm'])).toEqual([
      '--redis-sentinel-master needs --redis-sentinels host:port,…',
    ]);
    expect(
      issues(['serve', '--redis-password-file', '/run/secrets/redis-password'], {
        REDIS_URL: 'redis://u:p@r:1',
      }),
    ).toEqual([expect.stringMatching(/REDIS_URL carries a password too/)]);
    expect(
      issues(['serve', '--redis-password-file', '/run/secrets/empty'], {
        REDIS_URL: 'redis://r:1',
      }),
    ).toEqual([expect.stringMatching(/the file is empty/)]);
    expect(issues(['serve', '--redis-min-replicas', '1'])).toEqual([
      expect.stringMatching(/--redis-min-replicas: no Redis is named/),
    ]);
    expect(issues(['serve', '--store', 'memory', '--redis-cluster', 'a:1'])).toEqual([
      expect.stringMatching(/Redis flags with --store memory/),
    ]);
  });

  it('parseNodeList refuses empty entries and port 0', () => {
    expect(parseNodeList('a:1,b:2')).toEqual([
      { host: 'a', port: 1 },
      { host: 'b', port: 2 },
    ]);
    expect(parseNodeList('a:1,')).toBeUndefined();
    expect(parseNodeList('a:0')).toBeUndefined();
  });
});
