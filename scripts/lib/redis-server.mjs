// @ts-check
// A throw-away redis-server (the Debian package) on a free loopback port with no persistence, for
// the integration tests (test/global-setup.ts), the e2e harness (test/e2e/cluster/redis.ts, which
// runs it as a managed process) and the benches. Types for TypeScript: redis-server.d.mts.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { freePort } from './free-port.mjs';

export { freePort };

/**
 * REDIS_URL when it is set and not empty: a Redis to use instead of starting one.
 * @returns {string | undefined}
 */
export const externalRedisUrl = () => process.env.REDIS_URL || undefined;

/** @returns {boolean} */
export const redisServerInstalled = () =>
  spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

/**
 * The version `redis-server --version` reports (`v=…`), undefined when it cannot tell.
 * @returns {string | undefined}
 */
export const redisServerVersion = () =>
  spawnSync('redis-server', ['--version'])
    .stdout?.toString()
    .match(/v=(\S+)/)?.[1];

/**
 * The redis-server command line: loopback only, no RDB snapshots, no AOF, files in `dir`.
 * @param {number} port
 * @param {string} dir
 * @returns {string[]}
 */
export const redisServerArgs = (port, dir) => [
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
];

/**
 * Resolves true when a RESP PING on 127.0.0.1:port answers +PONG within `timeoutMs`.
 * @param {number} port
 * @param {number} [timeoutMs]
 * @returns {Promise<boolean>}
 */
export const redisPing = (port, timeoutMs = 500) =>
  new Promise(resolve => {
    const sock = connect({ host: '127.0.0.1', port }, () => sock.write('PING\r\n'));
    sock.setTimeout(timeoutMs, () => {
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

/**
 * @typedef {object} RedisServer
 * @property {string} url redis://127.0.0.1:<port>
 * @property {number} port
 * @property {string} dir its working directory (a fresh temp dir)
 * @property {import('node:child_process').ChildProcess} child
 * @property {() => void} stop SIGTERM, and the working directory removed
 */

/**
 * Starts redis-server in a fresh temp dir named `<prefix>…` and resolves once it answers PING;
 * kills it and rejects when it exits first or does not answer within `timeoutMs`.
 * `args` are appended to the command line (e.g. `['--maxmemory-policy', 'allkeys-lru']`).
 * @param {{ prefix?: string, timeoutMs?: number, args?: readonly string[] }} [options]
 * @returns {Promise<RedisServer>}
 */
export const startRedisServer = async ({
  prefix = 'podlease-redis-',
  timeoutMs = 10_000,
  args = [],
} = {}) => {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const child = spawn('redis-server', [...redisServerArgs(port, dir), ...args], {
    stdio: 'ignore',
  });
  const deadline = Date.now() + timeoutMs;
  while (!(await redisPing(port))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(
        `redis-server did not answer on 127.0.0.1:${port} within ${timeoutMs / 1000} s`,
      );
    }
    await new Promise(r => setTimeout(r, 50));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    child,
    stop: () => {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
};
