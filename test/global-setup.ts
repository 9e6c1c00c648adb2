/**
 * Integration global setup: a real Redis for the store and webhook suites.
 * REDIS_URL when set; else a `redis-server` (Debian package) started on a free loopback port;
 * else a testcontainers Redis when a Docker engine answers. With none of them the suites skip
 * loudly, or fail under PODLEASE_REQUIRE_ALL=1 (CI).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    redisSkip: string;
  }
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => {
        resolve(typeof addr === 'object' && addr !== null ? addr.port : 0);
      });
    });
  });

const ping = (port: number): Promise<boolean> =>
  new Promise(resolve => {
    const sock = connect({ host: '127.0.0.1', port }, () => sock.write('PING\r\n'));
    sock.setTimeout(500, () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('data', d => {
      sock.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    sock.once('error', () => {
      resolve(false);
    });
  });

const hasRedisServer = (): boolean => spawnSync('redis-server', ['--version']).status === 0;

const startRedisServer = async (): Promise<{ url: string; stop: () => void }> => {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'podlease-redis-'));
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    { stdio: 'ignore' },
  );
  const deadline = Date.now() + 10_000;
  while (!(await ping(port))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not answer on 127.0.0.1:${port} within 10 s`);
    }
    await new Promise(r => setTimeout(r, 50));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
};

const startContainer = async (): Promise<{ url: string; stop: () => Promise<void> }> => {
  const { GenericContainer } = await import('testcontainers');
  const c = await new GenericContainer('redis:8').withExposedPorts(6379).start();
  return {
    url: `redis://${c.getHost()}:${c.getMappedPort(6379)}`,
    stop: async () => {
      await c.stop();
    },
  };
};

const dockerReachable = (): boolean =>
  spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 5_000 }).status === 0;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const requireAll = process.env.PODLEASE_REQUIRE_ALL === '1';
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv !== undefined && fromEnv !== '') {
    project.provide('redisUrl', fromEnv);
    project.provide('redisSkip', '');
    return () => Promise.resolve();
  }
  if (hasRedisServer()) {
    const r = await startRedisServer();
    project.provide('redisUrl', r.url);
    project.provide('redisSkip', '');
    return () => {
      r.stop();
      return Promise.resolve();
    };
  }
  if (dockerReachable()) {
    const r = await startContainer();
    project.provide('redisUrl', r.url);
    project.provide('redisSkip', '');
    return r.stop;
  }
  const reason =
    'no Redis: REDIS_URL is unset, redis-server is not installed (apt-get install redis-server) ' +
    'and no Docker engine answers';
  if (requireAll) throw new Error(`PODLEASE_REQUIRE_ALL=1: ${reason}`);
  console.warn(`\n*** SKIPPING Redis suites: ${reason} ***\n`);
  project.provide('redisUrl', '');
  project.provide('redisSkip', reason);
  return () => Promise.resolve();
}
