/**
 * Redis over TLS with an ACL user that may do only what podlease needs (docs/redis.md): the
 * `podlease` executable reaches it from its flags (`rediss://` REDIS_URL, `--redis-username`,
 * `--redis-password-file`, `--redis-ca-file`), and the store refuses a wrong password or a
 * certificate it cannot check, naming the server.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PODLEASE_BIN } from '../../../scripts/lib/podlease-serve.mjs';
import { killNode, spawnRedis, type RedisProcess } from '../../../scripts/lib/redis-ha.mjs';
import { freePort } from '../../../scripts/lib/redis-server.mjs';
import { StoreUnavailableError } from '../../../src/pool/errors.js';
import { toPoolSet } from '../../../src/pool/pools-file.js';
import { RedisLeaseStore } from '../../../src/pool/redis-store.js';
import { ensureBuilt, generateCerts } from '../webhook/serve-process.js';

const run = promisify(execFile);
const skip = inject('redisSkip');

/**
 * What podlease needs: its keys; reads, writes, scripts and MULTI; INFO (the preflight, and the
 * scripts read the replication history); CONFIG GET (the preflight, where INFO lacks it); WAIT.
 */
const ACL = [
  'podlease',
  'on',
  '>s3cret-pass',
  '~podlease:*',
  '+@read',
  '+@write',
  '+@scripting',
  '+@transaction',
  '+@connection',
  '+info',
  '+config|get',
  '+wait',
];

describe.skipIf(skip !== '')(`Redis TLS and ACL${skip === '' ? '' : ` (skipped: ${skip})`}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'podlease-tls-'));
  let node: RedisProcess;
  let url: string;
  const poolsFile = join(dir, 'pools.yaml');
  const passwordFile = join(dir, 'password');

  beforeAll(async () => {
    ensureBuilt();
    generateCerts(dir);
    writeFileSync(poolsFile, 'pools:\n  - name: tls\n    cidr: 10.122.0.0/24\n    default: true\n');
    writeFileSync(passwordFile, 's3cret-pass\n');
    const port = await freePort();
    const plain = await freePort();
    node = await spawnRedis(plain, dir, [
      '--tls-port',
      String(port),
      '--tls-cert-file',
      join(dir, 'tls.crt'),
      '--tls-key-file',
      join(dir, 'tls.key'),
      '--tls-ca-cert-file',
      join(dir, 'ca.crt'),
      '--tls-auth-clients',
      'no',
      '--user',
      ...ACL,
      // The plain port answers PING (the start-up check) but nobody may log in as default.
      '--user',
      'default',
      'on',
      'nopass',
      '-@all',
      '+ping',
    ]);
    url = `rediss://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await killNode(node);
    rmSync(dir, { recursive: true, force: true });
  });

  const cli = (...args: string[]) =>
    run(
      process.execPath,
      [
        PODLEASE_BIN,
        ...args,
        '--pools',
        poolsFile,
        '--redis-username',
        'podlease',
        '--redis-password-file',
        passwordFile,
        '--redis-ca-file',
        join(dir, 'ca.crt'),
        '-o',
        'json',
      ],
      { env: { PATH: process.env.PATH ?? '', REDIS_URL: url } },
    );

  it('`podlease pools init` and `podlease pools` reach it from the flags', async () => {
    expect(JSON.parse((await cli('pools', 'init')).stdout)).toEqual([
      { pool: 'tls', result: 'initialised' },
    ]);
    const pools = JSON.parse((await cli('pools')).stdout) as { name: string }[];
    expect(pools).toMatchObject([{ name: 'tls', cidr: '10.122.0.0/24' }]);
  });

  it('allocates as the restricted user; refuses a wrong password and an unknown CA', async () => {
    const pool = toPoolSet({
      pools: [{ name: 'tls', cidr: '10.122.0.0/24', default: true }],
    }).pools.get('tls')!;
    const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
    const store = await RedisLeaseStore.connect({
      url,
      username: 'podlease',
      password: 's3cret-pass',
      ca,
    });
    try {
      await store.ensurePool(pool, { initialize: true });
      const a = await store.allocate({
        pool,
        leaseId: 'L-tls',
        pod: { namespace: 'default', generateName: 'x-' },
        ttlMs: 60_000,
      });
      expect(a.lease.ip).toMatch(/^10\.122\.0\./);
      expect((await store.release(pool, 'L-tls')).released).toBe(true);
      await store.dropPool('tls');
    } finally {
      await store.close();
    }
    const wrong = await RedisLeaseStore.connect({
      url,
      username: 'podlease',
      password: 'nope',
      ca,
      connectTimeoutMs: 1_000,
    }).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(StoreUnavailableError);
    expect((wrong as Error).message).toContain(`cannot connect to ${url}`);
    const untrusted = await RedisLeaseStore.connect({
      url,
      username: 'podlease',
      password: 's3cret-pass',
      connectTimeoutMs: 1_000,
    }).catch((e: unknown) => e);
    expect(untrusted).toBeInstanceOf(StoreUnavailableError);
  });
});
