/**
 * Integration global setup: a real Redis for the store and webhook suites.
 * REDIS_URL when set; else a `redis-server` (Debian package) started on a free loopback port;
 * else a testcontainers Redis when a Docker engine answers. With none of them the suites skip
 * loudly, or fail under PODLEASE_REQUIRE_ALL=1 (CI).
 */
import { spawnSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';

import {
  externalRedisUrl,
  redisServerInstalled,
  startRedisServer,
} from '../scripts/lib/redis-server.mjs';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    redisSkip: string;
  }
}

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
  const fromEnv = externalRedisUrl();
  if (fromEnv !== undefined) {
    project.provide('redisUrl', fromEnv);
    project.provide('redisSkip', '');
    return () => Promise.resolve();
  }
  if (redisServerInstalled()) {
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
