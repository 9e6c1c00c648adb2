#!/usr/bin/env node
// bench:webhook — admissions per second and latency of `podlease serve` over HTTPS at
// concurrency 32, beside a bare express HTTPS server answering a constant AdmissionReview, in the
// same run, with the memory store and with Redis (a redis-server is started on a free loopback
// port when REDIS_URL is unset). Every loop is bounded in count and time; loopback only.
//
//   npm run bench:webhook [-- --record]      --record rewrites "## Webhook (bench:webhook)"
//                                             in bench/RESULTS.md
//   BENCH_SECONDS=8 BENCH_MAX_REQUESTS=40000 BENCH_CONCURRENCY=32 BENCH_ROUNDS=3 (defaults)
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../scripts/lib/free-port.mjs';
import { PODLEASE_BIN, startServe } from '../../scripts/lib/podlease-serve.mjs';
import {
  externalRedisUrl,
  redisServerVersion,
  startRedisServer,
} from '../../scripts/lib/redis-server.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const MAX_REQUESTS = Number(process.env.BENCH_MAX_REQUESTS ?? 40_000);
const WARMUP_REQUESTS = 2_000;
const HALF_RATE_SECONDS = Math.min(SECONDS, 6);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RECORD = process.argv.includes('--record');

const sleep = ms => new Promise(r => setTimeout(r, ms));

const children = [];
const cleanup = [];
const stopAll = async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await sleep(300);
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const f of cleanup) f();
};
process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));

const startRedis = async () => {
  const external = externalRedisUrl();
  if (external) return { url: external, version: 'external' };
  const redis = await startRedisServer({ prefix: 'podlease-bench-redis-' });
  children.push(redis.child);
  cleanup.push(redis.stop);
  return { url: redis.url, version: redisServerVersion() };
};

const startBare = async certDir => {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'bench/webhook/bare-server.mjs'),
      String(port),
      `${certDir}/tls.crt`,
      `${certDir}/tls.key`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(child);
  await new Promise((resolve, reject) => {
    child.stdout.once('data', resolve);
    child.once('exit', code => reject(new Error(`bare server exited ${code}`)));
  });
  return { port, child };
};

const startPodlease = async (certDir, poolsFile, env) => {
  // Its request log is not read: the bench process is the load generator.
  const serve = await startServe({ certDir, args: ['--pools', poolsFile], env, stdout: false });
  children.push(serve.child);
  return { port: serve.port, metricsPort: serve.metricsPort, child: serve.child };
};

const template = readFileSync(
  join(ROOT, 'test/fixtures/admission/create-pod-deployment.json'),
  'utf8',
);
let seq = 0;
const body = () =>
  Buffer.from(template.replace('705ab4f5-6393-11e8-b7cc-42010a800002', `bench-${seq++}`));

const post = (agent, port) =>
  new Promise((resolve, reject) => {
    const data = body();
    const t0 = process.hrtime.bigint();
    const req = request(
      {
        host: '127.0.0.1',
        servername: 'localhost',
        port,
        path: '/mutate?timeout=10s',
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': data.length },
      },
      res => {
        const chunks = [];
        res.on('data', c => chunks.push(c));
        res.on('end', () => {
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          const text = Buffer.concat(chunks).toString();
          const ok = res.statusCode === 200 && text.includes('"allowed":true');
          resolve({ ms, ok, text });
        });
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(data);
  });

const pct = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;

const summarize = (lat, elapsedMs, errors) => {
  const s = Float64Array.from(lat).sort();
  return {
    requests: lat.length,
    errors,
    seconds: elapsedMs / 1000,
    rate: (lat.length / elapsedMs) * 1000,
    p50: pct(s, 50),
    p99: pct(s, 99),
    max: s[s.length - 1] ?? NaN,
  };
};

/** podlease's own latency histogram (allowed mutations), cumulative counts by bucket bound. */
const scrapeBuckets = async metricsPort => {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const out = new Map();
  for (const m of text.matchAll(
    /^podlease_admission_duration_seconds_bucket\{le="([^"]+)",endpoint="mutate",outcome="allowed"\} (\d+)$/gm,
  )) {
    out.set(m[1], Number(m[2]));
  }
  return out;
};

/** The upper bound (ms) of the bucket holding the p-th percentile of what happened between two scrapes. */
const serverPercentile = (before, after, p) => {
  const total = (after.get('+Inf') ?? 0) - (before.get('+Inf') ?? 0);
  for (const [le, count] of after) {
    if (count - (before.get(le) ?? 0) >= (total * p) / 100)
      return le === '+Inf' ? Infinity : Number(le) * 1000;
  }
  return NaN;
};

/** One keep-alive agent per server: its CONCURRENCY connections are opened during warm-up. */
const newAgent = ca => new Agent({ ca, keepAlive: true, maxSockets: CONCURRENCY });

/** Closed loop: CONCURRENCY workers back to back, at most MAX_REQUESTS or SECONDS. */
const closedLoop = async (agent, port, { count = MAX_REQUESTS, seconds = SECONDS } = {}) => {
  const lat = [];
  let errors = 0;
  let firstError;
  let started = 0;
  const t0 = Date.now();
  const stopAt = t0 + seconds * 1000;
  const worker = async () => {
    while (started < count && Date.now() < stopAt) {
      started++;
      try {
        const r = await post(agent, port);
        if (r.ok) lat.push(r.ms);
        else {
          errors++;
          firstError ??= r.text.slice(0, 300);
        }
      } catch (err) {
        errors++;
        firstError ??= err.message;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const result = summarize(lat, Date.now() - t0, errors);
  if (firstError) console.error(`  first error: ${firstError}`);
  return result;
};

/** Open loop at a fixed rate (requests started on schedule whatever the answers), bounded. */
const openLoop = async (agent, port, rate, seconds) => {
  const lat = [];
  let errors = 0;
  const total = Math.floor(rate * seconds);
  const inflight = [];
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    inflight.push(
      post(agent, port).then(
        r => (r.ok ? lat.push(r.ms) : errors++),
        () => errors++,
      ),
    );
  }
  await Promise.all(inflight);
  const result = summarize(lat, performance.now() - t0, errors);
  return { ...result, target: rate };
};

const fmt = r =>
  `${r.rate.toFixed(0).padStart(6)}/s  p50 ${r.p50.toFixed(2).padStart(6)} ms  p99 ${r.p99.toFixed(2).padStart(6)} ms  ` +
  `max ${r.max.toFixed(1).padStart(6)} ms  (${r.requests} ok, ${r.errors} errors, ${r.seconds.toFixed(1)} s)`;

const median = runs => [...runs].sort((x, y) => x.rate - y.rate)[Math.floor(runs.length / 2)];

const main = async () => {
  if (!existsSync(PODLEASE_BIN))
    execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  const dir = mkdtempSync(join(tmpdir(), 'podlease-bench-webhook-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('bash', [join(ROOT, 'certs/gen-dev-certs.sh'), dir], { stdio: 'ignore' });
  const ca = readFileSync(`${dir}/ca.crt`);
  const redis = await startRedis();
  console.log(
    `bench:webhook  node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, concurrency ${CONCURRENCY}, ` +
      `${ROUNDS} rounds of ≤${MAX_REQUESTS} requests or ${SECONDS} s per server, redis ${redis.version ?? '?'}`,
  );
  // All three servers run side by side; each round measures them one after the other, so
  // slow phases of a shared machine hit all of them alike. The median round counts.
  const targets = [
    {
      name: 'bare',
      label: 'bare express HTTPS (constant AdmissionReview)',
      ...(await startBare(dir)),
    },
  ];
  for (const store of ['memory', 'redis']) {
    const tag = Math.random().toString(16).slice(2, 8);
    const poolsFile = join(dir, `pools-${store}.yaml`);
    // 2^20 addresses: more than every run of this bench allocates.
    writeFileSync(
      poolsFile,
      `pools:\n  - name: bench-${tag}\n    cidr: 10.64.0.0/12\n    gateway: 10.64.0.1\n    default: true\n`,
    );
    const env = store === 'redis' ? { REDIS_URL: redis.url } : { PODLEASE_STORE: 'memory' };
    targets.push({
      name: store,
      label: `podlease serve, ${store} store`,
      ...(await startPodlease(dir, poolsFile, env)),
    });
  }
  for (const t of targets) {
    t.agent = newAgent(ca);
    t.runs = [];
    await closedLoop(t.agent, t.port, { count: WARMUP_REQUESTS, seconds: 5 });
  }
  for (let round = 1; round <= ROUNDS; round++) {
    for (const t of targets) {
      const r = await closedLoop(t.agent, t.port);
      t.runs.push(r);
      console.log(`round ${round} ${t.name.padEnd(7)} ${fmt(r)}`);
    }
  }
  const rows = [];
  const bare = targets[0];
  bare.peak = median(bare.runs);
  for (const t of targets) {
    t.peak = median(t.runs);
    // bare: at half of podlease's slower peak, the same load, to show the harness's own floor.
    const rate =
      t === bare
        ? Math.round(Math.min(...targets.slice(1).map(x => median(x.runs).rate)) / 2)
        : Math.round(t.peak.rate / 2);
    await sleep(500);
    const before = t === bare ? undefined : await scrapeBuckets(t.metricsPort);
    t.half = await openLoop(t.agent, t.port, rate, HALF_RATE_SECONDS);
    if (before !== undefined)
      t.half.serverP99 = serverPercentile(before, await scrapeBuckets(t.metricsPort), 99);
    const server =
      t.half.serverP99 === undefined ? '' : `; inside podlease p99 ≤ ${t.half.serverP99} ms`;
    console.log(
      `${t.name.padEnd(7)} median peak ${fmt(t.peak)}\n        at ${rate}/s  ${fmt(t.half)}${server}`,
    );
    rows.push(
      [`${t.label}, peak (median of ${ROUNDS})`, t.peak],
      [
        `${t.label}, open loop at ${rate}/s${t === bare ? ' (harness floor)' : ' (half peak)'}`,
        t.half,
      ],
    );
    t.agent.destroy();
  }
  const verdicts = targets.slice(1).map(t => {
    const ratio = t.peak.rate / bare.peak.rate;
    return (
      `${t.name}: ${(ratio * 100).toFixed(0)}% of the bare rate (target ≥ 50%: ${ratio >= 0.5 ? 'met' : 'MISSED'}); ` +
      `p99 ${t.half.p99.toFixed(2)} ms at half peak as the client sees it (target < 10 ms: ${t.half.p99 < 10 ? 'met' : 'MISSED'}; ` +
      `the bare server at the same load: ${bare.half.p99.toFixed(2)} ms), ` +
      `p99 ≤ ${t.half.serverP99} ms inside podlease (its own histogram, request to answer)`
    );
  });
  for (const v of verdicts) console.log(v);
  if (RECORD) record(rows, verdicts, redis);
  await stopAll();
};

const record = (rows, verdicts, redis) => {
  const file = join(ROOT, 'bench/RESULTS.md');
  const date = new Date().toISOString().slice(0, 10);
  const table = [
    '| run | admissions/s | p50 ms | p99 ms | max ms | ok | errors |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      ([name, r]) =>
        `| ${name} | ${r.rate.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.max.toFixed(1)} | ${r.requests} | ${r.errors} |`,
    ),
  ];
  const section = [
    '## Webhook (bench:webhook)',
    '',
    `Command: \`npm run bench:webhook -- --record\` · date: ${date} · node ${process.version} · ` +
      `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'} · redis-server ${redis.version ?? '?'} on loopback`,
    '',
    'HTTPS `POST /mutate` of a Deployment pod AdmissionReview (test/fixtures/admission/create-pod-deployment.json, ' +
      `fresh uid each) over ${CONCURRENCY} keep-alive connections. The bare server and two \`podlease serve\` ` +
      `processes (memory store; Redis store) run side by side; each of ${ROUNDS} rounds measures them one after ` +
      `the other for at most ${MAX_REQUESTS} requests or ${SECONDS} s (closed loop, concurrency ${CONCURRENCY}) ` +
      'and the median round is the peak. Then an open loop at half of that peak: requests start on schedule ' +
      'whatever the answers. The bare server gets the same open loop at half the slower podlease peak: its p99 ' +
      'is the floor of this harness (client, server and Redis share the 2 cores). Every podlease admission ' +
      'leases a fresh address (pool 10.64.0.0/12), logs one JSON line and counts metrics, as in production; ' +
      '"inside podlease" is its own latency histogram (request to answer, bucket bound).',
    '',
    ...table,
    '',
    ...verdicts.map(v => `- ${v}`),
    '',
  ].join('\n');
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n';
  const start = text.indexOf('## Webhook (bench:webhook)');
  if (start >= 0) {
    const next = text.indexOf('\n## ', start + 1);
    text = text.slice(0, start) + section + (next >= 0 ? text.slice(next + 1) : '');
  } else {
    text = `${text.trimEnd()}\n\n${section}`;
  }
  writeFileSync(file, text);
  console.log(`recorded in ${file}`);
};

main().catch(async err => {
  console.error(err);
  await stopAll();
  process.exit(1);
});
