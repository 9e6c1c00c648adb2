#!/usr/bin/env node
// bench:ha — allocation throughput of RedisLeaseStore on Redis high-availability set-ups beside
// a single Redis, in the same run, on loopback processes this script starts (scripts/lib):
//
//   single     one redis-server, no replica (REDIS_URL's set-up)
//   sentinel   a primary with 2 replicas and 3 sentinels, through node-redis createSentinel
//   sentinel+1 the same with --redis-min-replicas 1 (WAIT 1 after every allocation)
//   cluster    3 masters with a replica each, through createCluster; 3 pools, one per master
//
// Bounded: ROUNDS rounds of OPS allocations per set-up, interleaved round by round, the median
// kept; every set-up is torn down at the end.
//
//   npm run bench:ha            # prints a Markdown section; --record appends it to RESULTS.md
import { execFileSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { toKey } from '../../dist/pool/keys.js';
import { newLeaseId } from '../../dist/pool/lease-id.js';
import { toPoolSet } from '../../dist/pool/pools-file.js';
import { RedisLeaseStore } from '../../dist/pool/redis-store.js';
import { startRedisCluster, startSentinelSet } from '../../scripts/lib/redis-ha.mjs';
import { startRedisServer } from '../../scripts/lib/redis-server.mjs';

const CONCURRENCY = 64;
const CONNECTIONS = 8;
const OPS = Number(process.env.BENCH_OPS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARMUP = 2_000;
const record = process.argv.includes('--record');

const poolsOf = names =>
  toPoolSet({ pools: names.map((name, i) => ({ name, cidr: `10.${200 + i}.0.0/16` })) });

const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** OPS allocations, CONCURRENCY in flight over the stores, spread over the pools. */
const throughput = async (stores, pools, ops) => {
  let next = 0;
  let failed = 0;
  const list = [...pools.pools.values()];
  const worker = async store => {
    while (next < ops) {
      const n = next++;
      try {
        await store.allocate({
          pool: list[n % list.length],
          leaseId: newLeaseId(),
          pod: { namespace: 'bench', generateName: `app-${n % 10}-` },
          ttlMs: 900_000,
        });
      } catch {
        failed++;
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, (_, i) => worker(stores[i % stores.length])),
  );
  return { rps: ops / ((performance.now() - t0) / 1000), failed };
};

const connectAll = options =>
  Promise.all(
    Array.from({ length: CONNECTIONS }, () =>
      RedisLeaseStore.connect({ commandTimeoutMs: 30_000, connectTimeoutMs: 10_000, ...options }),
    ),
  );

/** Pool names, one on each cluster master. */
const clusterPools = async cluster => {
  const byMaster = new Map();
  for (let i = 0; i < 200 && byMaster.size < 3; i++) {
    const name = `benchha-${i}`;
    const port = (await cluster.masterOf(toKey(name, 'meta'))).port;
    if (!byMaster.has(port)) byMaster.set(port, name);
  }
  return [...byMaster.values()];
};

const main = async () => {
  const teardown = [];
  const setups = [];
  try {
    const single = await startRedisServer({ prefix: 'podlease-bench-ha-' });
    teardown.push(async () => single.stop());
    setups.push({
      name: 'single',
      what: 'one redis-server, no replica',
      stores: await connectAll({ url: single.url }),
      pools: poolsOf(['benchha-single']),
    });

    const set = await startSentinelSet({ replicas: 2, sentinels: 3 });
    teardown.push(() => set.stop());
    const topology = { kind: 'sentinel', masterName: set.masterName, sentinels: set.sentinelNodes };
    setups.push({
      name: 'sentinel',
      what: 'primary + 2 replicas, 3 sentinels (createSentinel)',
      stores: await connectAll({ topology }),
      pools: poolsOf(['benchha-sentinel']),
    });
    setups.push({
      name: 'sentinel+min-replicas 1',
      what: 'the same, WAIT 1 after each allocation',
      stores: await connectAll({ topology, minReplicas: 1 }),
      pools: poolsOf(['benchha-sentinel1']),
    });

    const cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
    teardown.push(() => cluster.stop());
    setups.push({
      name: 'cluster',
      what: '3 masters + 1 replica each (createCluster), 3 pools, one per master',
      stores: await connectAll({ topology: { kind: 'cluster', nodes: cluster.seeds } }),
      pools: poolsOf(await clusterPools(cluster)),
    });
    for (const s of setups) teardown.push(() => Promise.all(s.stores.map(x => x.close())));

    const reset = async s => {
      for (const p of s.pools.pools.values()) {
        await s.stores[0].dropPool(p.name);
        await s.stores[0].ensurePool(p, { initialize: true });
      }
    };
    for (const s of setups) {
      await reset(s);
      await throughput(s.stores, s.pools, WARMUP);
      s.rates = [];
      s.failed = 0;
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const s of setups) {
        await reset(s);
        const r = await throughput(s.stores, s.pools, OPS);
        s.rates.push(r.rps);
        s.failed += r.failed;
      }
    }
    for (const s of setups)
      for (const p of s.pools.pools.values()) await s.stores[0].dropPool(p.name);
    return setups.map(s => ({
      name: s.name,
      what: s.what,
      rps: median(s.rates),
      rates: s.rates,
      failed: s.failed,
    }));
  } finally {
    for (const t of teardown.reverse()) await t().catch(() => undefined);
  }
};

const results = await main();
const base = results.find(r => r.name === 'single').rps;
const date = new Date().toISOString().slice(0, 10);
const redisVersion = execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).match(
  /v=([\d.]+)/,
)?.[1];
const rows = results
  .map(
    r =>
      `| ${r.name} | ${r.what} | ${Math.round(r.rps)} | ${(r.rps / base).toFixed(2)}× | ${r.rates.map(x => Math.round(x)).join(', ')} | ${r.failed} |`,
  )
  .join('\n');
const md = `
### ${date} — \`npm run bench:ha\`

Node ${process.version}, redis-server ${redisVersion} on loopback, ${cpus().length} cores (every Redis process on the same cores). ${CONCURRENCY} allocations in flight over ${CONNECTIONS} store connections per set-up; ${ROUNDS} rounds of ${OPS} allocations into fresh pools, the set-ups interleaved round by round; the median round.

| set-up | what | allocations/s | ÷ single | rounds | failed |
| --- | --- | ---: | ---: | --- | ---: |
${rows}
`;
console.log(md);
if (record) appendFileSync(new URL('../RESULTS.md', import.meta.url), md);
