// @ts-check
// Throw-away Redis high-availability set-ups on loopback for the fault tests (test/integration/ha)
// and bench:ha: a primary with replicas watched by redis-sentinel processes, and a Redis Cluster
// of redis-server --cluster-enabled processes joined by `redis-cli --cluster create`. Every wait
// is bounded. Types for TypeScript: redis-ha.d.mts.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { freePort } from './free-port.mjs';
import { redisPing, redisServerArgs } from './redis-server.mjs';

const run = promisify(execFile);
const sleep = ms => new Promise(r => setTimeout(r, ms));

/** @returns {boolean} */
export const redisSentinelInstalled = () =>
  spawnSync('redis-sentinel', ['--version'], { stdio: 'ignore' }).status === 0;

/** @returns {boolean} */
export const redisCliInstalled = () =>
  spawnSync('redis-cli', ['--version'], { stdio: 'ignore' }).status === 0;

/**
 * `redis-cli -p port …args` on loopback; its stdout, trimmed.
 * @param {number} port
 * @param {readonly string[]} args
 * @returns {Promise<string>}
 */
export const cli = async (port, args) =>
  (
    await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 })
  ).stdout.trim();

/**
 * Polls `check` every 50 ms until it returns true, for at most `ms`.
 * @param {string} what
 * @param {() => Promise<boolean> | boolean} check
 * @param {number} [ms]
 */
export const waitFor = async (what, check, ms = 15_000) => {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
};

/**
 * @typedef {object} RedisProcess
 * @property {number} port
 * @property {string} dir its working directory, kept across restarts
 * @property {import('node:child_process').ChildProcess} child the running process
 * @property {readonly string[]} args
 */

/**
 * Starts redis-server on `port` in `dir` with `args` after the defaults of redis-server.mjs
 * (loopback, no persistence unless `args` say otherwise); resolves once it answers PING.
 * @param {number} port
 * @param {string} dir
 * @param {readonly string[]} args
 * @returns {Promise<RedisProcess>}
 */
export const spawnRedis = async (port, dir, args) => {
  // A replica's full sync starts at once, not after the default 5 s of diskless-sync delay.
  const fast = ['--repl-diskless-sync-delay', '0'];
  const child = spawn('redis-server', [...redisServerArgs(port, dir), ...fast, ...args], {
    stdio: 'ignore',
  });
  const p = { port, dir, child, args };
  await waitFor(`redis-server on 127.0.0.1:${port}`, async () => {
    if (child.exitCode !== null) throw new Error(`redis-server on ${port} exited`);
    return redisPing(port);
  });
  return p;
};

/**
 * Kills a node with SIGKILL and waits for the process to be gone.
 * @param {RedisProcess} p
 */
export const killNode = async p => {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const gone = new Promise(resolve => p.child.once('exit', resolve));
  p.child.kill('SIGCONT');
  p.child.kill('SIGKILL');
  await gone;
};

/**
 * The same node again, on its port and in its directory (its AOF or RDB, if any, is loaded).
 * @param {RedisProcess} p
 * @returns {Promise<RedisProcess>}
 */
export const restartNode = p => spawnRedis(p.port, p.dir, p.args);

/**
 * `field:value` of `redis-cli INFO section`.
 * @param {number} port
 * @param {string} section
 * @returns {Promise<Map<string, string>>}
 */
export const info = async (port, section) => {
  const out = new Map();
  for (const line of (await cli(port, ['INFO', section])).split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at > 0) out.set(line.slice(0, at), line.slice(at + 1).trim());
  }
  return out;
};

/**
 * @typedef {object} SentinelSet
 * @property {string} masterName
 * @property {RedisProcess[]} nodes the primary first, then the replicas (as started)
 * @property {{ port: number, child: import('node:child_process').ChildProcess }[]} sentinels
 * @property {{ host: string, port: number }[]} sentinelNodes
 * @property {() => Promise<number>} primaryPort the port Sentinel names as primary now
 * @property {() => Promise<void>} stop
 */

/**
 * A primary with `replicas` replicas and `sentinels` redis-sentinel processes (quorum: a
 * majority), failing over half a second after the primary stops answering.
 * @param {{ replicas?: number, sentinels?: number, masterName?: string, args?: readonly string[] }} [o]
 * @returns {Promise<SentinelSet>}
 */
export const startSentinelSet = async ({
  replicas = 2,
  sentinels = 3,
  masterName = 'podlease',
  args = [],
} = {}) => {
  const root = mkdtempSync(join(tmpdir(), 'podlease-sentinel-'));
  /** @type {RedisProcess[]} */
  const nodes = [];
  /** @type {{ port: number, child: import('node:child_process').ChildProcess }[]} */
  const watchers = [];
  const stop = async () => {
    for (const w of watchers) w.child.kill('SIGKILL');
    await Promise.all(nodes.map(killNode));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    const primaryPort = await freePort();
    const dir = join(root, 'n0');
    mkdirSync(dir, { recursive: true });
    nodes.push(await spawnRedis(primaryPort, dir, args));
    for (let i = 1; i <= replicas; i++) {
      const d = join(root, `n${i}`);
      mkdirSync(d, { recursive: true });
      const port = await freePort();
      nodes.push(
        await spawnRedis(port, d, [...args, '--replicaof', '127.0.0.1', String(primaryPort)]),
      );
    }
    for (const r of nodes.slice(1)) {
      await waitFor(
        `replica ${r.port} in sync`,
        async () => (await info(r.port, 'replication')).get('master_link_status') === 'up',
      );
    }
    const quorum = Math.floor(sentinels / 2) + 1;
    for (let i = 0; i < sentinels; i++) {
      const port = await freePort();
      const conf = join(root, `sentinel-${i}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${root}`,
          `sentinel monitor ${masterName} 127.0.0.1 ${primaryPort} ${quorum}`,
          `sentinel down-after-milliseconds ${masterName} 500`,
          `sentinel failover-timeout ${masterName} 4000`,
          `sentinel parallel-syncs ${masterName} 2`,
          '',
        ].join('\n'),
      );
      const child = spawn('redis-sentinel', [conf], { stdio: 'ignore' });
      watchers.push({ port, child });
    }
    for (const w of watchers) {
      await waitFor(`sentinel ${w.port} knows every replica and sentinel`, async () => {
        const master = await cli(w.port, ['SENTINEL', 'MASTER', masterName]);
        const f = master.split('\n');
        const field = name => Number(f[f.indexOf(name) + 1]);
        return field('num-slaves') >= replicas && field('num-other-sentinels') >= sentinels - 1;
      });
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    masterName,
    nodes,
    sentinels: watchers,
    sentinelNodes: watchers.map(w => ({ host: '127.0.0.1', port: w.port })),
    primaryPort: async () => {
      for (const w of watchers) {
        try {
          const out = await cli(w.port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName]);
          return Number(out.split('\n')[1]);
        } catch {
          // the next sentinel
        }
      }
      throw new Error('no sentinel answers');
    },
    stop,
  };
};

/** A free port whose cluster bus port (port + 10000) is free too. */
const freeClusterPort = async () => {
  for (let i = 0; i < 50; i++) {
    const port = await freePort();
    if (port + 10_000 > 65_535) continue;
    const busFree = await new Promise(resolve => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port + 10_000, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (busFree) return port;
  }
  throw new Error('no free port pair for a cluster node');
};

/**
 * @typedef {object} RedisClusterSet
 * @property {RedisProcess[]} nodes
 * @property {{ host: string, port: number }[]} seeds
 * @property {(key: string) => Promise<RedisProcess>} masterOf the node serving key's slot now
 * @property {() => Promise<void>} stop
 */

/**
 * `masters` primaries with `replicasPerMaster` replicas each, made into one cluster by
 * `redis-cli --cluster create`; resolves when every node says cluster_state:ok. A primary
 * whose process dies is replaced by its replica after about 2 s (cluster-node-timeout 1000).
 * @param {{ masters?: number, replicasPerMaster?: number, args?: readonly string[] }} [o]
 * @returns {Promise<RedisClusterSet>}
 */
export const startRedisCluster = async ({ masters = 3, replicasPerMaster = 1, args = [] } = {}) => {
  const root = mkdtempSync(join(tmpdir(), 'podlease-cluster-'));
  /** @type {RedisProcess[]} */
  const nodes = [];
  const stop = async () => {
    await Promise.all(nodes.map(killNode));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    const count = masters * (1 + replicasPerMaster);
    for (let i = 0; i < count; i++) {
      const dir = join(root, `n${i}`);
      mkdirSync(dir, { recursive: true });
      const port = await freeClusterPort();
      nodes.push(
        await spawnRedis(port, dir, [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, 'nodes.conf'),
          '--cluster-node-timeout',
          '1000',
          ...args,
        ]),
      );
    }
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map(n => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        String(replicasPerMaster),
        '--cluster-yes',
      ],
      { timeout: 30_000 },
    );
    for (const n of nodes) {
      await waitFor(`cluster node ${n.port} ok`, async () => {
        const i = await cli(n.port, ['CLUSTER', 'INFO']);
        return i.includes('cluster_state:ok') && i.includes(`cluster_known_nodes:${count}`);
      });
    }
    // Every replica has finished its first sync: a kill then loses nothing but what is in flight.
    for (const n of nodes) {
      await waitFor(`cluster node ${n.port} in sync`, async () => {
        const r = await info(n.port, 'replication');
        return r.get('role') === 'master' || r.get('master_link_status') === 'up';
      });
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const alive = () => nodes.filter(n => n.child.exitCode === null && n.child.signalCode === null);
  return {
    nodes,
    seeds: nodes.map(n => ({ host: '127.0.0.1', port: n.port })),
    masterOf: async key => {
      for (const n of alive()) {
        try {
          const slot = Number(await cli(n.port, ['CLUSTER', 'KEYSLOT', key]));
          // <id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot-range>…
          for (const line of (await cli(n.port, ['CLUSTER', 'NODES'])).split('\n')) {
            const f = line.split(' ');
            if (!(f[2] ?? '').includes('master') || (f[2] ?? '').includes('fail')) continue;
            const port = Number((f[1] ?? '').split('@')[0]?.split(':')[1]);
            const serves = f.slice(8).some(r => {
              const [a, b = a] = r.split('-').map(Number);
              return a !== undefined && a <= slot && slot <= b;
            });
            const node = nodes.find(x => x.port === port);
            if (serves && node !== undefined) return node;
          }
        } catch {
          // the next node
        }
      }
      throw new Error(`no node serves the slot of ${key}`);
    },
    stop,
  };
};
