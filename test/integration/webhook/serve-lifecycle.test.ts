/**
 * `podlease serve` starting and stopping, in process (startServe on loopback port 0 with a memory
 * store) and as a process on a real Redis: start-up gives up on errors that are not retryable,
 * and shutdown goes unready first while still serving through `--shutdown-delay`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startServe as startServeInProcess, type RunningServe } from '../../../src/bin/serve.js';
import { loadConfig, type Config } from '../../../src/config/config.js';
import { silentLogger } from '../../../src/log/logger.js';
import { parsePoolsText, type Pool } from '../../../src/pool/pools-file.js';
import { PoolShrinkError, StoreUnavailableError } from '../../../src/pool/errors.js';
import { MemoryLeaseStore } from '../../../src/pool/memory-store.js';
import { RedisLeaseStore } from '../../../src/pool/redis-store.js';
import type { EnsureOptions, EnsureResult } from '../../../src/pool/store.js';
import { NO_NAMESPACES, type NamespaceLookup } from '../../../src/webhook/namespaces.js';
import { reviewWith } from '../../fixtures/admission/load.js';
import {
  ensureBuilt,
  generateCerts,
  httpsAgent,
  postJson,
  startServe,
  type HttpsReply,
} from './serve-process.js';

const dir = mkdtempSync(join(tmpdir(), 'podlease-lifecycle-'));

beforeAll(() => {
  generateCerts(dir);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const serveConfig = (...flags: string[]): Config =>
  loadConfig(
    [
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--metrics-listen',
      '127.0.0.1:0',
      '--tls-cert',
      join(dir, 'tls.crt'),
      '--tls-key',
      join(dir, 'tls.key'),
      '--log-level',
      'silent',
      ...flags,
    ],
    {},
  );

/** A memory store whose ensurePool answers from a script of errors first. */
class ScriptedStore extends MemoryLeaseStore {
  calls = 0;
  private readonly failures: Error[];
  constructor(failures: Error[]) {
    super();
    this.failures = failures;
  }
  override ensurePool(pool: Pool, options: EnsureOptions): Promise<EnsureResult> {
    this.calls++;
    const next = this.failures.shift();
    return next === undefined ? super.ensurePool(pool, options) : Promise.reject(next);
  }
}

const start = (
  config: Config,
  store: MemoryLeaseStore,
  namespaces: NamespaceLookup = NO_NAMESPACES,
): Promise<RunningServe> =>
  startServeInProcess({
    config,
    store,
    namespaces,
    log: silentLogger(),
    banner: () => undefined,
  });

describe('startServe: laying out the pools', () => {
  it(
    'gives up at once on an error that is not retryable, with that error',
    { timeout: 10_000 },
    async () => {
      const shrink = new PoolShrinkError('default', ['10.244.0.7']);
      const store = new ScriptedStore([shrink]);
      await expect(start(serveConfig(), store)).rejects.toBe(shrink);
      expect(store.calls).toBe(1);
      // An error without `retryable` is not retried either.
      const broken = new ScriptedStore([
        new Error('pool "default": stored segments are unreadable'),
      ]);
      await expect(start(serveConfig(), broken)).rejects.toThrow(/segments are unreadable/);
      expect(broken.calls).toBe(1);
    },
  );

  it('serves unready on a retryable error and retries until the store answers', async () => {
    const store = new ScriptedStore([new StoreUnavailableError('connection refused')]);
    const running = await start(serveConfig('--shutdown-delay', '0'), store);
    expect(await readyz(running.metrics.port)).toBe(503);
    await expect.poll(() => store.calls, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    await expect.poll(() => readyz(running.metrics.port), { timeout: 10_000 }).toBe(200);
    await running.close();
  });
});

const readyz = async (metricsPort: number): Promise<number> =>
  (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status;

/** A pod CREATE on a connection of its own (a fresh agent): the listener must still accept. */
const mutateOnNewConnection = async (port: number): Promise<HttpsReply> => {
  const agent = httpsAgent(join(dir, 'ca.crt'), 1);
  try {
    return await postJson(
      agent,
      port,
      '/mutate?timeout=10s',
      reviewWith('create-pod-deployment', {}),
    );
  } finally {
    agent.destroy();
  }
};

const allowed = (reply: HttpsReply): unknown =>
  (reply.body as { response?: { allowed?: boolean } }).response?.allowed;

describe('startServe: readiness', () => {
  it('is not ready until the namespace cache has synced', async () => {
    let synced = false;
    const namespaces: NamespaceLookup = {
      annotations: () => Promise.resolve(undefined),
      ready: () => synced,
    };
    const running = await start(
      serveConfig('--shutdown-delay', '0'),
      new MemoryLeaseStore(),
      namespaces,
    );
    try {
      expect(await readyz(running.metrics.port)).toBe(503);
      synced = true;
      expect(await readyz(running.metrics.port)).toBe(200);
    } finally {
      await running.close();
    }
  });
});

describe('startServe: shutdown', () => {
  it('goes unready at once, keeps serving through --shutdown-delay, then closes the listener', async () => {
    const running = await start(serveConfig('--shutdown-delay', '3s'), new MemoryLeaseStore());
    const { port } = running.webhook;
    const metricsPort = running.metrics.port;
    expect(await readyz(metricsPort)).toBe(200);
    let closed = false;
    const closing = running.close().then(() => {
      closed = true;
    });
    expect(await readyz(metricsPort)).toBe(503);
    const reply = await mutateOnNewConnection(port);
    expect(closed).toBe(false);
    expect(reply.status).toBe(200);
    expect(allowed(reply)).toBe(true);
    await closing;
    await expect(mutateOnNewConnection(port)).rejects.toThrow(/ECONNREFUSED/);
    await expect(readyz(metricsPort)).rejects.toThrow();
  });
});

const skip = inject('redisSkip');

describe.skipIf(skip !== '')(
  `podlease serve on Redis${skip === '' ? '' : ` (skipped: ${skip})`}`,
  () => {
    it('exits 1 with the message when a pool shrink is refused, instead of retrying forever', async () => {
      ensureBuilt();
      const url = inject('redisUrl');
      const name = `shrink-${randomBytes(4).toString('hex')}`;
      const wide = parsePoolsText(`pools:\n  - name: ${name}\n    cidr: 10.70.0.0/24\n`, 'wide');
      const pool = wide.pools.get(name)!;
      const store = await RedisLeaseStore.connect({ url });
      try {
        await store.ensurePool(pool, { initialize: true });
        await store.reserve(pool, 'default/web/0', '10.70.0.200');
        writeFileSync(
          join(dir, 'narrow.yaml'),
          `pools:\n  - name: ${name}\n    cidr: 10.70.0.0/25\n    default: true\n`,
        );
        await expect(
          startServe({
            certDir: dir,
            args: ['--pools', join(dir, 'narrow.yaml'), '--log-level', 'silent'],
            env: { REDIS_URL: url },
          }),
        ).rejects.toThrow(
          new RegExp(
            `^podlease serve exited 1:\\n[^]*podlease serve: pool "${name}": the new configuration ` +
              'leaves out 1 address\\(es\\) still leased or reserved \\(10\\.70\\.0\\.200\\)',
          ),
        );
      } finally {
        await store.dropPool(name);
        await store.close();
      }
    });

    it('on SIGTERM answers /readyz 503 but still admits, then stops listening and exits 0', async () => {
      ensureBuilt();
      const s = await startServe({
        certDir: dir,
        args: ['--shutdown-delay', '3s', '--log-level', 'warn'],
        env: { REDIS_URL: inject('redisUrl') },
      });
      const exited = new Promise(resolve => s.child.once('exit', resolve));
      s.child.kill('SIGTERM');
      await expect.poll(() => readyz(s.metricsPort)).toBe(503);
      const reply = await mutateOnNewConnection(s.port);
      expect(s.child.exitCode).toBeNull();
      expect(allowed(reply)).toBe(true);
      expect(await exited).toBe(0);
      await expect(mutateOnNewConnection(s.port)).rejects.toThrow(/ECONNREFUSED/);
    });
  },
);
