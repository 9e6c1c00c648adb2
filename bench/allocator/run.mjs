#!/usr/bin/env node
// bench:allocator — allocation throughput and latency of RedisLeaseStore beside redis-benchmark
// SET in the same run, on a redis-server this script starts on a free loopback port (or
// REDIS_URL). Bounded: fixed operation counts, each phase stops by itself.
//
//   npm run bench:allocator            # prints a Markdown section; --record appends it to RESULTS.md
//
// Phases:
//   1. baseline: redis-benchmark -t set -c 64 -n 100000 (and EVAL of a one-SET script, EVALSHA of
//      allocate-8.lua with one item and with a batch of 16)
//   2. throughput (after 10,000 warm-up allocations): 64 allocations in flight for a /16 and a /8
//      pool (20,000 allocations each) over 8 connections, and for the /16 over one; the store
//      batches them (how many per script call: printed)
//   3. latency: one allocation at a time at 0 %, 50 % and 99 % fill of a /16 (2,000 samples each)
//   4. worst case: a /8 at 99 % fill where no never-used address is left (the bitmap scan reads all
//      2 MiB, then the oldest released address is taken)
//   5. creating a /8 pool (ensurePool)
import { execFileSync } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createClient } from 'redis';
import { toPoolSet } from '../../dist/pool/pools-file.js';
import { newLeaseId } from '../../dist/pool/lease-id.js';
import { poolKeys } from '../../dist/pool/keys.js';
import { RedisLeaseStore } from '../../dist/pool/redis-store.js';
import { externalRedisUrl, startRedisServer } from '../../scripts/lib/redis-server.mjs';

const CONCURRENCY = 64;
const CONNECTIONS = 8;
const THROUGHPUT_OPS = 20_000;
const LATENCY_SAMPLES = 2_000;
const record = process.argv.includes('--record');

const startRedis = async () => {
  const external = externalRedisUrl();
  if (external) return { url: external, port: Number(new URL(external).port), stop: () => {} };
  return startRedisServer({ prefix: 'podlease-bench-' });
};

const pool = (name, entry) => toPoolSet({ pools: [{ name, ...entry }] }).pools.get(name);
const pct = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const ms = v => `${v.toFixed(3)} ms`;

const redisBenchmark = (port, args) => {
  const out = execFileSync(
    'redis-benchmark',
    ['-h', '127.0.0.1', '-p', String(port), '-c', String(CONCURRENCY), '--csv', ...args],
    { encoding: 'utf8' },
  );
  // CSV: "<test name>","<rps>",...; the name may hold quotes of its own, the numbers never do.
  const line = out.trim().split('\n').at(-1);
  return Number(line.split('","').at(-7));
};

// redis-benchmark running the real allocate script (random lease ids) on a /8: the server-side
// ceiling of allocation, with no Node client in the way; `items` allocations per call (a batch,
// as the store sends under load); the result is allocations/s.
const allocateScriptBaseline = async (port, store, items = 1) => {
  const p = pool('benchraw', { cidr: '10.0.0.0/8' });
  await store.dropPool(p.name);
  await store.ensurePool(p, { initialize: true });
  const source = readFileSync(
    new URL('../../src/pool/lua/allocate-8.lua', import.meta.url),
    'utf8',
  );
  const sha = execFileSync('redis-cli', ['-p', String(port), 'SCRIPT', 'LOAD', source], {
    encoding: 'utf8',
  }).trim();
  const k = poolKeys(p.name);
  const keys = [k.meta, k.dirty, k.released, k.leases, k.byip, k.pending, k.sticky, k.resbyip];
  const rec = '{"s":"pending","ns":"bench","g":"app-","c":1,"e":2}';
  // The 15 ARGV of one item (allocate-8.lua's header); each gets its own random lease id.
  const item = n => [
    p.layout.hash,
    'lease',
    `id${n}-__rand_int__`,
    '-1',
    '',
    rec,
    '2',
    '0',
    'bench',
    '',
    '',
    '',
    '',
    '1',
    '0',
  ];
  const rps = redisBenchmark(port, [
    '-n',
    String(Math.ceil(100_000 / items)),
    '-r',
    '100000000',
    'EVALSHA',
    sha,
    '8',
    ...keys,
    ...Array.from({ length: items }, (_, n) => item(n)).flat(),
  ]);
  await store.dropPool(p.name);
  return rps * items;
};

const allocate = (store, p, n) =>
  store.allocate({
    pool: p,
    leaseId: newLeaseId(),
    pod: { namespace: 'bench', generateName: `app-${n % 10}-` },
    ttlMs: 900_000,
  });

const throughput = async (stores, p, ops) => {
  let next = 0;
  const worker = async store => {
    while (next < ops) {
      const n = next++;
      await allocate(store, p, n);
    }
  };
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, (_, i) => worker(stores[i % stores.length])),
  );
  return ops / ((performance.now() - t0) / 1000);
};

// Allocation batches the stores sent (RedisLeaseStore.allocationBatches), summed over the stores.
const batchMark = stores =>
  stores.reduce(
    (m, s) => {
      const b = s.allocationBatches;
      return { batches: m.batches + b.batches, items: m.items + b.items };
    },
    { batches: 0, items: 0 },
  );
const batchesSince = (stores, mark) => {
  const now = batchMark(stores);
  const batches = now.batches - mark.batches;
  const items = now.items - mark.items;
  const largest = Math.max(...stores.map(s => s.allocationBatches.largest));
  return { batches, items, mean: batches > 0 ? items / batches : 0, largest };
};
const batchText = (b, largest = true) =>
  `${b.items} allocations in ${b.batches} script calls: ${b.mean.toFixed(1)} per call` +
  (largest ? ` on average, the largest ${b.largest}` : '');

const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Three rounds of THROUGHPUT_OPS allocations, each into the freshly created pool; the median.
const rounds = async (stores, p) => {
  const rates = [];
  for (let i = 0; i < 3; i++) {
    await stores[0].dropPool(p.name);
    await stores[0].ensurePool(p, { initialize: true });
    rates.push(await throughput(stores, p, THROUGHPUT_OPS));
  }
  return median(rates);
};

const fillTo = async (stores, p, target) => {
  const { leased } = await stores[0].stats(p);
  if (target > leased) await throughput(stores, p, target - leased);
};

// One allocation at a time; each is released right after (untimed) so the fill level stays put.
const latency = async (store, p, samples) => {
  const times = [];
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    const a = await allocate(store, p, i);
    times.push(performance.now() - t0);
    await store.release(p, a.lease.id);
  }
  times.sort((a, b) => a - b);
  return { p50: pct(times, 50), p99: pct(times, 99) };
};

const main = async () => {
  const redis = await startRedis();
  const stores = await Promise.all(
    Array.from({ length: CONNECTIONS }, () =>
      RedisLeaseStore.connect({ url: redis.url, commandTimeoutMs: 60_000 }),
    ),
  );
  const admin = await createClient({ url: redis.url }).connect();
  const results = {};
  try {
    results.setRps = median(
      [1, 2, 3].map(() => redisBenchmark(redis.port, ['-t', 'set', '-n', '100000'])),
    );
    results.allocEvalRps = await allocateScriptBaseline(redis.port, stores[0]);
    results.allocEval16Rps = await allocateScriptBaseline(redis.port, stores[0], 16);
    results.evalRps = redisBenchmark(redis.port, [
      '-n',
      '200000',
      'EVAL',
      "return redis.call('SET', KEYS[1], ARGV[1])",
      '1',
      'bench:{k}',
      'v',
    ]);

    const p16 = pool('bench16', { cidr: '10.200.0.0/16' });
    const p8 = pool('bench8', { cidr: '10.0.0.0/8' });
    for (const p of [p16, p8]) await stores[0].dropPool(p.name);

    let t0 = performance.now();
    await stores[0].ensurePool(p8, { initialize: true });
    results.create8Ms = performance.now() - t0;
    t0 = performance.now();
    await stores[0].ensurePool(p16, { initialize: true });
    results.create16Ms = performance.now() - t0;

    // Warm the JIT and the connections on a throw-away pool before measuring.
    const warm = pool('benchwarm', { cidr: '10.201.0.0/16' });
    await stores[0].dropPool(warm.name);
    await stores[0].ensurePool(warm, { initialize: true });
    await throughput(stores, warm, 10_000);
    await stores[0].dropPool(warm.name);

    let mark = batchMark(stores);
    results.rps16 = await rounds(stores, p16);
    results.rps8 = await rounds(stores, p8);
    results.batchesThroughput = batchesSince(stores, mark);
    // The same 64 in flight through one store (one connection, as one webhook replica has):
    // its batches can reach ALLOCATION_BATCH_MAX.
    mark = batchMark(stores.slice(0, 1));
    results.rps16one = await rounds(stores.slice(0, 1), p16);
    results.batchesOne = batchesSince(stores.slice(0, 1), mark);

    // Latency by fill level on the /16 (drop and refill so the fill is exact).
    await stores[0].dropPool(p16.name);
    await stores[0].ensurePool(p16, { initialize: true });
    results.latency = {};
    for (const fill of [0, 50, 99]) {
      await fillTo(stores, p16, Math.floor((p16.layout.size * fill) / 100));
      mark = batchMark(stores);
      results.latency[fill] = await latency(stores[0], p16, LATENCY_SAMPLES);
      results.batchesLatency = batchesSince(stores, mark);
    }

    // Worst case on the /8: every address used once, 1 % released and free; no fresh bit left.
    const worst = pool('bench8w', { cidr: '10.0.0.0/8' });
    await stores[0].dropPool(worst.name);
    await stores[0].ensurePool(worst, { initialize: true });
    const k = poolKeys(worst.name);
    const size = worst.layout.size;
    await admin.setRange(k.dirty, 0, Buffer.alloc(Math.ceil(size / 8), 0xff));
    const freeCount = Math.floor(size / 100);
    for (let i = 0; i < freeCount; i += 10_000) {
      const batch = [];
      for (let j = i; j < Math.min(i + 10_000, freeCount); j++)
        batch.push({ score: j, value: String((j * 97) % size) });
      await admin.zAdd(k.released, batch);
    }
    await admin.hSet(k.meta, {
      held: String(size - freeCount),
      cursor: String(size - 1),
      seq: String(freeCount),
    });
    results.worst8 = await latency(stores[0], worst, LATENCY_SAMPLES);
    for (const p of [p16, p8, worst]) await stores[0].dropPool(p.name);
  } finally {
    await admin.close();
    await Promise.all(stores.map(s => s.close()));
    redis.stop();
  }
  return results;
};

const r = await main();
const date = new Date().toISOString().slice(0, 10);
const node = process.version;
const redisVersion = execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).match(
  /v=([\d.]+)/,
)?.[1];
const l = r.latency;
const md = `
### ${date} — \`npm run bench:allocator\`

Node ${node}, redis-server ${redisVersion} on loopback, 2 cores. Concurrency ${CONCURRENCY} (${CONNECTIONS} connections, pipelined); throughput is the median of 3 rounds of ${THROUGHPUT_OPS} allocations into a fresh pool, SET the median of 3 redis-benchmark runs.

| measure | result | baseline / target |
| --- | --- | --- |
| redis-benchmark SET, -c ${CONCURRENCY} | ${Math.round(r.setRps)} ops/s | baseline |
| redis-benchmark EVAL (one SET in Lua), -c ${CONCURRENCY} | ${Math.round(r.evalRps)} ops/s | baseline |
| redis-benchmark EVALSHA allocate-8.lua (the real script, random ids, no pipelining), -c ${CONCURRENCY} | ${Math.round(r.allocEvalRps)} ops/s | context: ${(r.allocEvalRps / r.setRps).toFixed(2)}× SET |
| the same, 16 allocations per EVALSHA (a batch), -c ${CONCURRENCY} | ${Math.round(r.allocEval16Rps)} allocations/s | context: ${(r.allocEval16Rps / r.setRps).toFixed(2)}× SET |
| allocations/s, /16 pool | ${Math.round(r.rps16)} | ${(r.rps16 / r.setRps).toFixed(2)}× SET (target ≥ 0.5×) |
| allocations/s, /8 pool | ${Math.round(r.rps8)} | ${(r.rps8 / r.setRps).toFixed(2)}× SET (target ≥ 0.5×) |
| batches in the throughput rounds | ${batchText(r.batchesThroughput)} | |
| allocations/s, /16 pool, the 64 through one connection | ${Math.round(r.rps16one)} | ${(r.rps16one / r.setRps).toFixed(2)}× SET; ${batchText(r.batchesOne)} |
| batches in the latency samples at 99 % fill | ${batchText(r.batchesLatency, false)} | one at a time: 1 per call |
| latency p50 / p99 at 0 % fill (/16) | ${ms(l[0].p50)} / ${ms(l[0].p99)} | |
| latency p50 / p99 at 50 % fill (/16) | ${ms(l[50].p50)} / ${ms(l[50].p99)} | |
| latency p50 / p99 at 99 % fill (/16) | ${ms(l[99].p50)} / ${ms(l[99].p99)} | p50 ${(l[99].p50 / l[0].p50).toFixed(2)}× of 0 % (target ≤ 1.5×) |
| worst case: /8 at 99 % fill, no never-used address left | ${ms(r.worst8.p50)} / ${ms(r.worst8.p99)} | p50 ${(r.worst8.p50 / l[0].p50).toFixed(2)}× of 0 % |
| create a /8 pool (16,777,214 addresses) | ${ms(r.create8Ms)} | target < 1 s |
| create a /16 pool | ${ms(r.create16Ms)} | |
`;
console.log(md);
if (record) appendFileSync(new URL('../RESULTS.md', import.meta.url), md);
