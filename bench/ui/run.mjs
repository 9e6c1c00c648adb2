#!/usr/bin/env node
// bench:ui — the pool map's data endpoint for a /16 at 50 % fill, beside a bare read of the
// same Redis keys, on a redis-server this script starts on a free loopback port (or REDIS_URL).
// Bounded: fixed sample counts.
//
//   npm run bench:ui            # prints a Markdown section; --record appends it to RESULTS.md
//
// Series (SAMPLES each, one at a time, after WARMUP untimed rounds):
//   1. bare read: one MULTI of HMGET meta, HGETALL leases, sticky and byip, ZRANGE released
//      BYSCORE WITHSCORES, straight from node-redis (no parsing) — the floor
//   2. store.snapshot(): the same MULTI, records parsed and sorted (src/pool/redis-store.ts)
//   3. GET /api/pools/<pool>/map, cold: every request reads the store (cacheMs 0) and builds the
//      map (snapshot + cells + JSON + gzip), over loopback HTTP
//   4. GET /pools/<pool>, cold: the server-rendered page
//   5. GET /api/pools/<pool>/map, warm: the snapshot shared as the app does within 1 s
import { execFileSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createClient } from 'redis';
import { createLogger } from '../../dist/log/logger.js';
import { newLeaseId } from '../../dist/pool/lease-id.js';
import { poolKeys } from '../../dist/pool/keys.js';
import { toPoolSet } from '../../dist/pool/pools-file.js';
import { RedisLeaseStore } from '../../dist/pool/redis-store.js';
import { createUiApp } from '../../dist/ui/app.js';
import { externalRedisUrl, startRedisServer } from '../../scripts/lib/redis-server.mjs';

const SAMPLES = 30;
const WARMUP = 5;
const COOL = 60_000;
const record = process.argv.includes('--record');

const startRedis = async () => {
  const external = externalRedisUrl();
  if (external) return { url: external, stop: () => {} };
  return startRedisServer({ prefix: 'podlease-bench-ui-' });
};

const pct = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const ms = v => `${v.toFixed(1)} ms`;

const series = async fn => {
  for (let i = 0; i < WARMUP; i++) await fn();
  const times = [];
  for (let i = 0; i < SAMPLES; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { p50: pct(times, 50), p99: pct(times, 99) };
};

const fill = async (store, pool, n) => {
  let next = 0;
  const now = Date.now();
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < n) {
        const i = next++;
        const a = await store.allocate({
          pool,
          leaseId: newLeaseId(),
          pod: { namespace: `team-${i % 12}`, generateName: `app-${i % 40}-` },
          ttlMs: 900_000,
          stickyKey: i % 50 === 0 ? `team-${i % 12}/db/${i}` : undefined,
          now,
        });
        if (i % 3 !== 0) {
          await store.bind(pool, a.lease.id, {
            namespace: a.lease.namespace,
            name: `app-${i}`,
            uid: `uid-${i}`,
          });
        }
      }
    }),
  );
};

const main = async () => {
  const redis = await startRedis();
  const store = await RedisLeaseStore.connect({ url: redis.url, commandTimeoutMs: 60_000 });
  const raw = await createClient({ url: redis.url }).connect();
  const name = 'benchui16';
  const pool = toPoolSet({
    pools: [{ name, cidr: '10.210.0.0/16', gateway: '10.210.0.1' }],
  }).pools.get(name);
  const pools = { pools: new Map([[name, pool]]), defaults: {} };
  const log = createLogger({ level: 'silent' });
  const listen = app =>
    new Promise(resolve => {
      const server = createServer(app);
      server.listen(0, '127.0.0.1', () => resolve(server));
    });
  const cold = await listen(
    createUiApp({ store, pools, reuseCooldownMs: COOL, log, cacheMs: 0, staleMs: 0 }),
  );
  const warm = await listen(createUiApp({ store, pools, reuseCooldownMs: COOL, log }));
  const base = s => `http://127.0.0.1:${s.address().port}`;
  const results = {};
  try {
    await store.dropPool(name);
    await store.ensurePool(pool, { initialize: true });
    const target = Math.floor(pool.layout.size / 2);
    const t0 = performance.now();
    await fill(store, pool, target);
    results.fillSeconds = (performance.now() - t0) / 1000;
    results.stats = await store.stats(pool, { reuseCooldownMs: COOL });
    const k = poolKeys(name);
    results.bare = await series(() =>
      raw
        .multi()
        .hmGet(k.meta, ['layout', 'segments', 'size', 'held', 'epoch'])
        .hGetAll(k.leases)
        .hGetAll(k.sticky)
        .hGetAll(k.byip)
        .zRangeWithScores(k.released, `(${Date.now() - COOL}`, '+inf', { BY: 'SCORE' })
        .exec(),
    );
    results.snapshot = await series(() => store.snapshot(pool, { reuseCooldownMs: COOL }));
    const get = async (url, into) => {
      const res = await fetch(url, { headers: { 'accept-encoding': 'gzip' } });
      const body = await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}`);
      if (into !== undefined) into.bytes = body.byteLength;
    };
    const sizes = {};
    results.mapCold = await series(() => get(`${base(cold)}/api/pools/${name}/map`, sizes));
    results.pageCold = await series(() => get(`${base(cold)}/pools/${name}`));
    results.mapWarm = await series(() => get(`${base(warm)}/api/pools/${name}/map`));
    const head = await fetch(`${base(cold)}/api/pools/${name}/map`, {
      headers: { 'accept-encoding': 'gzip' },
    });
    results.gzipBytes = Number(head.headers.get('content-length') ?? 0);
    results.jsonBytes = sizes.bytes;
    await store.dropPool(name);
  } finally {
    cold.close();
    warm.close();
    await raw.close();
    await store.close();
    redis.stop();
  }
  return results;
};

const r = await main();
const date = new Date().toISOString().slice(0, 10);
const redisVersion = execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).match(
  /v=([\d.]+)/,
)?.[1];
const ratio = v => `${(v.p50 / r.bare.p50).toFixed(2)}× bare`;
const md = `
### ${date} — \`npm run bench:ui\`

Node ${process.version}, redis-server ${redisVersion} on loopback, ${cpus().length} cores (shared). A /16 pool (${r.stats.size} addresses) at 50 % fill: ${r.stats.leased} held (${r.stats.bound} bound, ${r.stats.pending} pending, ${r.stats.reserved} sticky), filled in ${r.fillSeconds.toFixed(1)} s. ${SAMPLES} sequential samples per series after ${WARMUP} warm-up rounds; the map JSON is ${(r.jsonBytes / 1024).toFixed(0)} KiB, ${(r.gzipBytes / 1024).toFixed(0)} KiB gzipped as sent (cell details come on hover).

| series | p50 | p99 | p50 vs the bare read |
| --- | ---: | ---: | --- |
| bare read: one MULTI of HMGET meta, HGETALL leases / sticky / byip, ZRANGE released (node-redis, unparsed) | ${ms(r.bare.p50)} | ${ms(r.bare.p99)} | baseline |
| \`store.snapshot()\` (the same MULTI, records parsed and sorted) | ${ms(r.snapshot.p50)} | ${ms(r.snapshot.p99)} | ${ratio(r.snapshot)} |
| \`GET /api/pools/<pool>/map\`, cold (store read + map + JSON + gzip, loopback HTTP) | ${ms(r.mapCold.p50)} | ${ms(r.mapCold.p99)} | ${ratio(r.mapCold)} |
| \`GET /pools/<pool>\` (server-rendered page), cold | ${ms(r.pageCold.p50)} | ${ms(r.pageCold.p99)} | ${ratio(r.pageCold)} |
| \`GET /api/pools/<pool>/map\`, warm (the shared snapshot) | ${ms(r.mapWarm.p50)} | ${ms(r.mapWarm.p99)} | ${ratio(r.mapWarm)} |
`;
console.log(md);
if (record) appendFileSync(new URL('../RESULTS.md', import.meta.url), md);
