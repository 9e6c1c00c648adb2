#!/usr/bin/env node
// bench:controller — the lease controller of `podlease serve --controller on`, in three parts,
// with same-run baselines. Loopback only; every loop is bounded in count and time.
//
//   1. rebuild from real pods: the e2e control plane (test/e2e/cluster: kube-apiserver + etcd +
//      controller-manager, no kubelet, no scheduler) holds BENCH_REAL_PODS pods (default 10,000)
//      created through the API with `podlease.io/ip` and `podlease.io/lease` annotations (no
//      webhook registered; the pods stay Pending, which counts as live). Then, against an empty
//      Redis each time: `podlease serve --controller on --rebuild-settle 0s` from spawn to the pool
//      rebuilt (every lease restored, epoch set), to /readyz 200 and to the first reconcile done;
//      and `podlease rebuild` from spawn to exit. Peak RSS is VmHWM of /proc/<pid>/status.
//   2. rebuild from BENCH_SYNTH_PODS synthetic pods (default 100,000): the same measurements against
//      a stand-in API server (bench/controller/fake-apiserver.mjs, plain HTTP) that serves the paged
//      metadata-only pod list, watches, Leases and Events.
//   3. deletion → release under churn: on the real cluster, a MutatingWebhookConfiguration sends pod
//      CREATEs of one namespace to the same `podlease serve --controller on` (which leases each pod
//      an address, as in production); BENCH_CHURN_RATE pods/s (default 50) are created for
//      BENCH_CHURN_SECONDS (default 60), each deleted with gracePeriodSeconds=0 BENCH_POD_LIFETIME_MS
//      (default 3000) after it was created. The delay is the controller's log line "released … of
//      pod <ns>/<name> (deleted)" (its pino `time`) minus the time the DELETE was sent.
//
// Baselines: `node -e ''`; one paged metadata list of the same pods by a bare node:http(s) client
// (the API server's floor for the controller's first list); a pipelined batch of as many HSETs
// through node-redis (the floor of writing that many leases); `podlease serve --controller on`
// against an API server with 1 pod (the process's own RSS).
//
//   npm run bench:controller [-- --record] [-- --phases synthetic,real,churn]
//   BENCH_REAL_PODS=10000 BENCH_SYNTH_PODS=100000 BENCH_CHURN_RATE=50 BENCH_CHURN_SECONDS=60
//   BENCH_POD_LIFETIME_MS=3000 BENCH_NODE_FLAGS='--cpu-prof --cpu-prof-dir=/tmp/prof' (for the
//   `podlease` processes). --record rewrites "## Lease controller (bench:controller)" in
//   bench/RESULTS.md.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { registerHooks } from 'node:module';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import { newLeaseId } from '../../dist/pool/lease-id.js';
import { poolKeys } from '../../dist/pool/keys.js';
import { freePort } from '../../scripts/lib/free-port.mjs';
import { PODLEASE_BIN, serveArgs } from '../../scripts/lib/podlease-serve.mjs';
import { redisServerVersion, startRedisServer } from '../../scripts/lib/redis-server.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const envInt = (name, fallback) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer`);
  return value;
};
const REAL_PODS = envInt('BENCH_REAL_PODS', 10_000);
const SYNTH_PODS = envInt('BENCH_SYNTH_PODS', 100_000);
const CHURN_RATE = envInt('BENCH_CHURN_RATE', 50);
const CHURN_SECONDS = envInt('BENCH_CHURN_SECONDS', 60);
const POD_LIFETIME_MS = envInt('BENCH_POD_LIFETIME_MS', 3_000);
const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(f => f !== '');
const RECORD = process.argv.includes('--record');
const PHASES = (
  process.argv.find(a => a.startsWith('--phases='))?.slice('--phases='.length) ??
  'synthetic,real,churn'
).split(',');

const REAL_POOL = { name: 'bench', cidr: '10.240.0.0/16', gateway: '10.240.0.1', default: true };
const SYNTH_POOL = { name: 'bench', cidr: '10.64.0.0/12', gateway: '10.64.0.1', default: true };
const REAL_NAMESPACES = 10;
const CREATE_CONCURRENCY = 32;
const CREATE_TIMEOUT_S = 900;
const CHURN_NAMESPACE = 'bench-churn';
const CHURN_LABEL = { 'podlease.io/bench': 'churn' };
const CHURN_MAX_IN_FLIGHT = 64;
const RELEASE_WAIT_MS = 30_000;
const REBUILD_TIMEOUT_MS = 300_000;
const RSS_SAMPLE_MS = 50;
const ACCEPT_METADATA_LIST =
  'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
const CONTAINER = { name: 'app', image: 'registry.invalid/never-pulled:1' };
const SECTION = '## Lease controller (bench:controller)';
const TARGETS = { realSeconds: 5, synthSeconds: 30, synthRssMiB: 250 };

const sleep = ms => new Promise(r => setTimeout(r, ms));
const log = line => console.log(`bench:controller ${line}`);
const quantile = (sorted, q) =>
  sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const median = values =>
  quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
const s = ms => `${(ms / 1000).toFixed(2)} s`;
const mib = kib => `${(kib / 1024).toFixed(0)} MiB`;

// ---- process bookkeeping ----------------------------------------------------------------------

const children = new Set();
const cleanups = [];
const track = child => {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
};
const stopAll = async () => {
  for (const c of children) c.kill('SIGTERM');
  await sleep(500);
  for (const c of children) c.kill('SIGKILL');
  for (const f of cleanups.splice(0).reverse()) await f();
};
process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));

/** VmHWM and VmRSS of a live process, KiB; undefined once it is gone. */
const vmOf = pid => {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = key => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
    return { hwm: kib('VmHWM'), rss: kib('VmRSS') };
  } catch {
    return undefined;
  }
};

/** Samples VmHWM every RSS_SAMPLE_MS (it only grows); `hwm` is the last value read. */
const rssSampler = pid => {
  const state = { hwm: 0 };
  const read = () => {
    const vm = vmOf(pid);
    if (vm !== undefined) state.hwm = Math.max(state.hwm, vm.hwm);
  };
  read();
  const timer = setInterval(read, RSS_SAMPLE_MS);
  return {
    get hwm() {
      read();
      return state.hwm;
    },
    stop: () => clearInterval(timer),
  };
};

const waitExit = child =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise(resolve => child.once('exit', code => resolve(code)));

// ---- HTTP to an API server --------------------------------------------------------------------

/** A keep-alive client for one API server (TLS client certificate, or plain HTTP). */
const apiClient = ({ server, ca, cert, key }) => {
  const url = new URL(server);
  const tls = url.protocol === 'https:';
  const agent = tls
    ? new HttpsAgent({ keepAlive: true, maxSockets: 64, ca, cert, key })
    : new HttpAgent({ keepAlive: true, maxSockets: 64 });
  const call = (method, path, { body, accept = 'application/json', timeoutMs = 60_000 } = {}) =>
    new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = (tls ? httpsRequest : httpRequest)(new URL(path, url), {
        method,
        agent,
        timeout: timeoutMs,
        headers: {
          accept,
          ...(data === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) }),
        },
      });
      req.on('timeout', () =>
        req.destroy(new Error(`${method} ${path}: no answer in ${timeoutMs} ms`)),
      );
      req.on('error', reject);
      req.on('response', res => {
        const chunks = [];
        res.on('data', c => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json, text });
        });
        res.on('error', reject);
      });
      req.end(data);
    });
  return { call, close: () => agent.destroy() };
};

/** The baseline list: every page of `GET /api/v1/pods` as metadata, each page parsed. */
const bareList = async (api, expected) => {
  const t0 = performance.now();
  let items = 0;
  let cont = '';
  let pages = 0;
  do {
    const q = new URLSearchParams({ limit: '500', ...(cont === '' ? {} : { continue: cont }) });
    const r = await api.call('GET', `/api/v1/pods?${q}`, { accept: ACCEPT_METADATA_LIST });
    if (r.status !== 200) throw new Error(`list pods: ${r.status} ${r.text.slice(0, 200)}`);
    items += r.json.items.length;
    cont = r.json.metadata?.continue ?? '';
    pages++;
  } while (cont !== '' && pages < 10_000);
  if (items < expected) throw new Error(`the bare list saw ${items} pods, expected ≥ ${expected}`);
  return performance.now() - t0;
};

const bareListMedian = async (api, expected) => {
  const runs = [];
  for (let i = 0; i < 3; i++) runs.push(await bareList(api, expected));
  return median(runs);
};

// ---- baselines --------------------------------------------------------------------------------

const nodeStartup = () => {
  const runs = [];
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    spawnSync(process.execPath, ['-e', ''], { stdio: 'ignore' });
    runs.push(performance.now() - t0);
  }
  return median(runs);
};

/** `count` HSETs of lease-sized records, pipelined 1000 at a time through one node-redis client. */
const redisPipeline = async count => {
  const redis = await startRedisServer({ prefix: 'podlease-bench-ctl-redis-' });
  const client = createClient({ url: redis.url });
  await client.connect();
  const record = JSON.stringify({
    i: 123456,
    s: 'bound',
    ns: 'bench-17',
    n: 'web-17-5d8f9c7b6-0000h',
    u: '754aa0cc-ae13-40ec-aad8-7cc9e03741b7',
    c: Date.now(),
    b: Date.now(),
  });
  const t0 = performance.now();
  for (let done = 0; done < count; done += 1000) {
    const batch = client.multi();
    for (let i = done; i < Math.min(count, done + 1000); i++) {
      batch.hSet('bench:baseline', newLeaseId(), record);
    }
    await batch.execAsPipeline();
  }
  const ms = performance.now() - t0;
  const n = await client.hLen('bench:baseline');
  await client.quit();
  redis.stop();
  if (n !== count) throw new Error(`redis baseline wrote ${n} of ${count}`);
  return ms;
};

// ---- podlease processes -----------------------------------------------------------------------

/**
 * `podlease serve --controller on` on free loopback ports; its JSON log lines are parsed as they
 * come (the webhook's request lines are counted, not kept).
 */
const startServe = async ({ dir, certPath, keyPath, kubeconfig, pools, redisUrl, args = [] }) => {
  const port = await freePort();
  const metricsPort = await freePort();
  const lines = [];
  /** The last webhook request lines, for failure messages. */
  const webhook = [];
  const waiters = new Set();
  const t0 = Date.now();
  const child = track(
    spawn(
      process.execPath,
      [
        ...NODE_FLAGS,
        PODLEASE_BIN,
        ...serveArgs({ port, metricsPort, certPath, keyPath }),
        '--pools',
        pools,
        '--store',
        'redis',
        '--kubeconfig',
        kubeconfig,
        '--controller',
        'on',
        '--leader-elect-namespace',
        'default',
        '--leader-elect-lease',
        `podlease-bench-${port}`,
        '--shutdown-delay',
        '0s',
        ...args,
      ],
      {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', REDIS_URL: redisUrl },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    ),
  );
  let stderr = '';
  child.stderr.on('data', d => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', text => {
    let line;
    try {
      line = JSON.parse(text);
    } catch {
      return;
    }
    if (line.component === 'webhook') {
      webhook.push(line);
      if (webhook.length > 20) webhook.shift();
      return;
    }
    lines.push(line);
    for (const w of waiters) {
      if (w.match(line)) {
        waiters.delete(w);
        w.resolve(line);
      }
    }
  });
  const exited = waitExit(child);
  /** The first log line (past or future) that `match`es, within `timeoutMs`. */
  const waitLog = (what, match, timeoutMs) => {
    const seen = lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { match, resolve };
      waiters.add(w);
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`podlease serve: no "${what}" within ${timeoutMs} ms\n${stderr}`));
      }, timeoutMs);
      timer.unref();
      void exited.then(code => {
        if (!waiters.has(w)) return;
        waiters.delete(w);
        clearTimeout(timer);
        reject(new Error(`podlease serve exited ${code} before "${what}"\n${stderr}`));
      });
    });
  };
  const readyz = async () => {
    try {
      return (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status === 200;
    } catch {
      return false;
    }
  };
  const metric = async name => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    return text
      .split('\n')
      .filter(l => l.startsWith(name))
      .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
  };
  return {
    child,
    pid: child.pid,
    t0,
    port,
    metricsPort,
    lines,
    webhook,
    waitLog,
    readyz,
    metric,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
};

const leaseCount = async (redisUrl, pool) => {
  const client = createClient({ url: redisUrl });
  await client.connect();
  const n = await client.hLen(poolKeys(pool.name).leases);
  await client.quit();
  return n;
};

const isRebuilt = line => line.msg?.endsWith(' rebuilt and ready') && line.alreadyReady === false;

/**
 * Spawns `podlease serve --controller on --rebuild-settle 0s` against a fresh Redis and times
 * the rebuild of `expected` leases: spawn → first pod list in, → rebuilt (every lease restored,
 * epoch set), → /readyz 200, → first reconcile done. VmHWM at rebuilt and at the end.
 */
const serveRebuild = async ({ dir, certPath, keyPath, kubeconfig, pools, expected, pool }) => {
  const redis = await startRedisServer({ prefix: 'podlease-bench-ctl-redis-' });
  try {
    const serve = await startServe({
      dir,
      certPath,
      keyPath,
      kubeconfig,
      pools,
      redisUrl: redis.url,
      args: ['--rebuild-settle', '0s'],
    });
    const rss = rssSampler(serve.pid);
    try {
      let readyAt;
      const polling = (async () => {
        const deadline = Date.now() + REBUILD_TIMEOUT_MS;
        while (readyAt === undefined && Date.now() < deadline) {
          if (await serve.readyz()) readyAt = Date.now();
          else await sleep(50);
        }
      })();
      const synced = await serve.waitLog(
        'pod cache synced',
        l => l.msg === 'pod cache synced',
        REBUILD_TIMEOUT_MS,
      );
      const rebuilt = await serve.waitLog('rebuilt and ready', isRebuilt, REBUILD_TIMEOUT_MS);
      const hwmRebuilt = rss.hwm;
      const restored = await leaseCount(redis.url, pool);
      await polling;
      const reconciled = await serve.waitLog(
        'reconcile done',
        l => l.msg === 'reconcile done' && l.time >= rebuilt.time,
        REBUILD_TIMEOUT_MS,
      );
      await sleep(1_000);
      const result = {
        listedMs: synced.time - serve.t0,
        rebuiltMs: rebuilt.time - serve.t0,
        readyMs: (readyAt ?? Number.NaN) - serve.t0,
        reconciledMs: reconciled.time - serve.t0,
        restoreMs:
          rebuilt.time - (serve.lines.find(l => l.msg?.includes('has no epoch'))?.time ?? NaN),
        restored,
        logged: rebuilt.restored,
        hwmRebuilt,
        hwmEnd: rss.hwm,
        warnings: serve.lines.filter(l => l.level >= 40).length,
      };
      if (restored !== expected) {
        throw new Error(`podlease serve restored ${restored} leases, expected ${expected}`);
      }
      return result;
    } finally {
      rss.stop();
      await serve.stop();
    }
  } finally {
    redis.stop();
  }
};

/** `podlease rebuild` against a fresh Redis: spawn → exit, VmHWM sampled while it runs. */
const cliRebuild = async ({ dir, kubeconfig, pools, expected, pool }) => {
  const redis = await startRedisServer({ prefix: 'podlease-bench-ctl-redis-' });
  try {
    const t0 = performance.now();
    const child = track(
      spawn(
        process.execPath,
        [
          ...NODE_FLAGS,
          PODLEASE_BIN,
          'rebuild',
          '--pools',
          pools,
          '--store',
          'redis',
          '--kubeconfig',
          kubeconfig,
          '-o',
          'json',
        ],
        {
          cwd: dir,
          env: { PATH: process.env.PATH ?? '', REDIS_URL: redis.url },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      ),
    );
    const rss = rssSampler(child.pid);
    let out = '';
    let err = '';
    child.stdout.on('data', d => (out += d.toString()));
    child.stderr.on('data', d => (err = (err + d.toString()).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), REBUILD_TIMEOUT_MS);
    // VmHWM is read until the process is a zombie; the last sample is within RSS_SAMPLE_MS of exit.
    const code = await waitExit(child);
    const ms = performance.now() - t0;
    clearTimeout(timer);
    rss.stop();
    if (code !== 0) throw new Error(`podlease rebuild exited ${code}: ${err}`);
    const rows = JSON.parse(out);
    const restored = await leaseCount(redis.url, pool);
    if (restored !== expected)
      throw new Error(`podlease rebuild restored ${restored} of ${expected}`);
    return { ms, hwm: rss.hwm, result: rows[0]?.result };
  } finally {
    redis.stop();
  }
};

/** The process's own footprint: `podlease serve --controller on`, API server with 1 pod. */
const idleServe = async ({ dir, certPath, keyPath, kubeconfig, pools }) => {
  const redis = await startRedisServer({ prefix: 'podlease-bench-ctl-redis-' });
  try {
    const serve = await startServe({
      dir,
      certPath,
      keyPath,
      kubeconfig,
      pools,
      redisUrl: redis.url,
      args: ['--rebuild-settle', '0s'],
    });
    const rss = rssSampler(serve.pid);
    try {
      await serve.waitLog('reconcile done', l => l.msg === 'reconcile done', 60_000);
      await sleep(2_000);
      return { hwm: rss.hwm, startedMs: Date.now() - serve.t0 };
    } finally {
      rss.stop();
      await serve.stop();
    }
  } finally {
    redis.stop();
  }
};

// ---- part 2: synthetic pods -------------------------------------------------------------------

const startFakeApi = async pods => {
  const port = await freePort();
  const child = track(
    spawn(
      process.execPath,
      [
        join(ROOT, 'bench/controller/fake-apiserver.mjs'),
        String(port),
        String(pods),
        SYNTH_POOL.name,
        SYNTH_POOL.cidr,
        SYNTH_POOL.gateway,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    ),
  );
  const bytes = await new Promise((resolve, reject) => {
    child.stdout.once('data', d => resolve(Number(d.toString().split(' ')[1])));
    child.once('exit', code => reject(new Error(`fake API server exited ${code}`)));
  });
  return {
    server: `http://127.0.0.1:${port}`,
    bytes,
    stop: async () => {
      child.kill('SIGTERM');
      await waitExit(child);
    },
  };
};

const writeKubeconfig = (file, cluster, user) => {
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'bench', cluster }],
      users: [{ name: 'bench', user }],
      contexts: [
        { name: 'bench', context: { cluster: 'bench', user: 'bench', namespace: 'default' } },
      ],
      'current-context': 'bench',
    }),
  );
  return file;
};

const synthetic = async (dir, results) => {
  const certDir = join(dir, 'dev-certs');
  spawnSync('bash', [join(ROOT, 'certs/gen-dev-certs.sh'), certDir], { stdio: 'ignore' });
  const certs = { certPath: join(certDir, 'tls.crt'), keyPath: join(certDir, 'tls.key') };
  const pools = join(dir, 'pools-synthetic.json');
  writeFileSync(pools, JSON.stringify({ pools: [SYNTH_POOL] }));
  const pool = { name: SYNTH_POOL.name };

  const idleApi = await startFakeApi(1);
  try {
    const kubeconfig = writeKubeconfig(
      join(dir, 'fake-1.kubeconfig'),
      { server: idleApi.server, 'insecure-skip-tls-verify': true },
      { token: 'bench' },
    );
    results.idle = await idleServe({ dir, ...certs, kubeconfig, pools });
    log(`idle podlease serve --controller on (1 pod): VmHWM ${mib(results.idle.hwm)}`);
  } finally {
    await idleApi.stop();
  }

  log(`starting the stand-in API server with ${SYNTH_PODS} pods`);
  const fake = await startFakeApi(SYNTH_PODS);
  try {
    const kubeconfig = writeKubeconfig(
      join(dir, 'fake.kubeconfig'),
      { server: fake.server, 'insecure-skip-tls-verify': true },
      { token: 'bench' },
    );
    const api = apiClient({ server: fake.server });
    const listMs = await bareListMedian(api, SYNTH_PODS);
    api.close();
    log(`bare list of ${SYNTH_PODS} pods (${(fake.bytes / 1e6).toFixed(0)} MB JSON): ${s(listMs)}`);
    const serve = await serveRebuild({
      dir,
      ...certs,
      kubeconfig,
      pools,
      expected: SYNTH_PODS,
      pool,
    });
    log(
      `serve: listed ${s(serve.listedMs)}, rebuilt ${s(serve.rebuiltMs)}, ready ${s(serve.readyMs)}, ` +
        `reconciled ${s(serve.reconciledMs)}; VmHWM ${mib(serve.hwmRebuilt)} at rebuilt, ${mib(serve.hwmEnd)} at end`,
    );
    const cli = await cliRebuild({ dir, kubeconfig, pools, expected: SYNTH_PODS, pool });
    log(`podlease rebuild: ${s(cli.ms)}, VmHWM ${mib(cli.hwm)}`);
    results.synthetic = { pods: SYNTH_PODS, bytes: fake.bytes, listMs, serve, cli };
  } finally {
    await fake.stop();
  }
};

// ---- part 1 and 3: the real API server --------------------------------------------------------

/** Imports the e2e harness (TypeScript, relative imports written `.js`) with Node's type stripping. */
const loadHarness = async () => {
  registerHooks({
    resolve(specifier, context, next) {
      if (
        specifier.startsWith('.') &&
        specifier.endsWith('.js') &&
        context.parentURL?.endsWith('.ts')
      ) {
        const ts = new URL(`${specifier.slice(0, -3)}.ts`, context.parentURL);
        if (!existsSync(new URL(specifier, context.parentURL)) && existsSync(ts)) {
          return next(ts.href, context);
        }
      }
      return next(specifier, context);
    },
  });
  const cluster = await import('../../test/e2e/cluster/cluster.ts');
  const certs = await import('../../test/e2e/cluster/certs.ts');
  const binaries = await import('../../test/e2e/cluster/binaries.ts');
  return { ...cluster, ...certs, ...binaries };
};

const ipOf = n => [24, 16, 8, 0].map(sh => Math.floor(n / 2 ** sh) % 256).join('.');
const REAL_BASE = 10 * 2 ** 24 + 240 * 2 ** 16;

const createNamespace = async (api, name, labels = {}) => {
  const r = await api.call('POST', '/api/v1/namespaces', {
    body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } },
  });
  if (r.status !== 201 && r.status !== 409)
    throw new Error(`namespace ${name}: ${r.status} ${r.text}`);
  // The ServiceAccount admission plugin refuses pods until the controller-manager made this.
  const deadline = Date.now() + 60_000;
  while (
    (await api.call('GET', `/api/v1/namespaces/${name}/serviceaccounts/default`)).status !== 200
  ) {
    if (Date.now() > deadline) throw new Error(`no ServiceAccount default/${name} within 60 s`);
    await sleep(200);
  }
};

/** REAL_PODS annotated pods, CREATE_CONCURRENCY calls in flight. */
const createRealPods = async api => {
  for (let n = 0; n < REAL_NAMESPACES; n++) await createNamespace(api, `bench-${n}`);
  let next = 0;
  let failed = 0;
  const deadline = Date.now() + CREATE_TIMEOUT_S * 1000;
  const t0 = performance.now();
  const worker = async () => {
    while (next < REAL_PODS && Date.now() < deadline) {
      const i = next++;
      const body = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: `pod-${i}`,
          labels: { app: `web-${i % 100}` },
          annotations: {
            'podlease.io/cidr': REAL_POOL.cidr,
            'podlease.io/gateway': REAL_POOL.gateway,
            'podlease.io/ip': ipOf(REAL_BASE + 2 + i),
            'podlease.io/lease': `${REAL_POOL.name}/${newLeaseId()}`,
          },
        },
        spec: { containers: [CONTAINER], automountServiceAccountToken: false },
      };
      const r = await api.call('POST', `/api/v1/namespaces/bench-${i % REAL_NAMESPACES}/pods`, {
        body,
      });
      if (r.status !== 201) failed++;
      if (failed > 100)
        throw new Error(`pod creation keeps failing: ${r.status} ${r.text.slice(0, 300)}`);
    }
  };
  await Promise.all(Array.from({ length: CREATE_CONCURRENCY }, worker));
  const ms = performance.now() - t0;
  if (next < REAL_PODS || failed > 0) {
    throw new Error(`created ${next - failed} of ${REAL_PODS} pods in ${s(ms)} (${failed} failed)`);
  }
  return ms;
};

const WEBHOOK_NAME = 'podlease-bench-controller';

const registerWebhook = async (api, port, caBundle, called) => {
  const body = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: WEBHOOK_NAME },
    webhooks: [
      {
        name: 'mutate.podlease.io',
        clientConfig: { url: `https://127.0.0.1:${port}/mutate`, caBundle },
        rules: [
          {
            operations: ['CREATE'],
            apiGroups: [''],
            apiVersions: ['v1'],
            resources: ['pods'],
            scope: 'Namespaced',
          },
        ],
        namespaceSelector: { matchLabels: CHURN_LABEL },
        sideEffects: 'NoneOnDryRun',
        failurePolicy: 'Fail',
        admissionReviewVersions: ['v1'],
        timeoutSeconds: 10,
      },
    ],
  };
  const r = await api.call(
    'POST',
    '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
    { body },
  );
  if (r.status !== 201) throw new Error(`webhook configuration: ${r.status} ${r.text}`);
  // The API server picks the configuration up within a second or so: a dry run (allowed
  // without a patch, nothing leased) shows when, in podlease's request log.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const probe = await api.call('POST', `/api/v1/namespaces/${CHURN_NAMESPACE}/pods?dryRun=All`, {
      body: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { generateName: 'probe-' },
        spec: { containers: [CONTAINER] },
      },
    });
    if (probe.status === 201 && called()) return;
    if (Date.now() > deadline)
      throw new Error(
        `the webhook is not called within 30 s: ${probe.status} ${probe.text.slice(0, 300)}`,
      );
    await sleep(200);
  }
};

/**
 * CHURN_RATE creations per second for CHURN_SECONDS (open loop: on schedule whatever the answers,
 * at most CHURN_MAX_IN_FLIGHT at once; a slot that finds them all busy is counted as skipped),
 * each pod deleted POD_LIFETIME_MS after its creation answered. Returns per pod the DELETE's send
 * and answer times.
 */
const churn = async api => {
  const deletions = new Map();
  const createMs = [];
  const counts = { created: 0, createFailed: 0, skipped: 0, deleteFailed: 0 };
  let inFlight = 0;
  const pending = new Set();
  const del = name => {
    const sent = Date.now();
    inFlight++;
    return api
      .call('DELETE', `/api/v1/namespaces/${CHURN_NAMESPACE}/pods/${name}`, {
        body: { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0 },
      })
      .then(
        r => {
          if (r.status === 200)
            deletions.set(`${CHURN_NAMESPACE}/${name}`, { sent, done: Date.now() });
          else counts.deleteFailed++;
        },
        () => counts.deleteFailed++,
      )
      .finally(() => inFlight--);
  };
  const create = () => {
    const t0 = performance.now();
    inFlight++;
    return api
      .call('POST', `/api/v1/namespaces/${CHURN_NAMESPACE}/pods`, {
        body: {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { generateName: 'churn-' },
          spec: { containers: [CONTAINER], automountServiceAccountToken: false },
        },
      })
      .then(
        r => {
          if (
            r.status !== 201 ||
            r.json?.metadata?.annotations?.['podlease.io/lease'] === undefined
          ) {
            counts.createFailed++;
            return;
          }
          counts.created++;
          createMs.push(performance.now() - t0);
          const p = sleep(POD_LIFETIME_MS).then(() => del(r.json.metadata.name));
          pending.add(p);
          void p.finally(() => pending.delete(p));
        },
        () => counts.createFailed++,
      )
      .finally(() => inFlight--);
  };
  const total = CHURN_RATE * CHURN_SECONDS;
  const t0 = Date.now();
  let started = 0;
  while (started < total) {
    const due = Math.min(total, Math.floor(((Date.now() - t0) / 1000) * CHURN_RATE) + 1);
    while (started < due) {
      started++;
      if (inFlight >= CHURN_MAX_IN_FLIGHT) counts.skipped++;
      else {
        const p = create();
        pending.add(p);
        void p.finally(() => pending.delete(p));
      }
    }
    await sleep(5);
  }
  const createSeconds = (Date.now() - t0) / 1000;
  const drainDeadline = Date.now() + POD_LIFETIME_MS + 60_000;
  while (pending.size > 0 && Date.now() < drainDeadline)
    await Promise.race([...pending, sleep(1000)]);
  return { deletions, createMs, counts, createSeconds, total };
};

const real = async (dir, results, phases) => {
  const h = await loadHarness();
  const missing = h.missingBinaries();
  if (missing.length > 0)
    throw new Error(
      `control-plane binaries missing (${missing.join(', ')}): run test/e2e/cluster/build.sh`,
    );
  log('starting the e2e control plane');
  const cluster = await h.startCluster();
  cleanups.push(() => cluster.stop());
  const versions = h.controlPlaneVersions();
  results.versions = versions;
  const api = apiClient({
    server: cluster.server,
    ca: readFileSync(cluster.caCertPath),
    cert: readFileSync(cluster.adminCertPath),
    key: readFileSync(cluster.adminKeyPath),
  });
  cleanups.push(() => api.close());
  const serving = await h.issueCertificate(
    dir,
    { certPath: cluster.caCertPath, keyPath: cluster.caKeyPath },
    { name: 'webhook', commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'], usage: 'server' },
  );
  const certs = { certPath: serving.certPath, keyPath: serving.keyPath };
  const pools = join(dir, 'pools-real.json');
  writeFileSync(pools, JSON.stringify({ pools: [REAL_POOL] }));
  const pool = { name: REAL_POOL.name };
  const kubeconfig = cluster.kubeconfigPath;

  log(`creating ${REAL_PODS} annotated pods`);
  const createMs = await createRealPods(api);
  log(
    `created ${REAL_PODS} pods in ${s(createMs)} (${((REAL_PODS * 1000) / createMs).toFixed(0)} pods/s)`,
  );
  const listMs = await bareListMedian(api, REAL_PODS);
  log(`bare list of ${REAL_PODS} pods: ${s(listMs)}`);
  if (phases.includes('real')) {
    const serve = await serveRebuild({
      dir,
      ...certs,
      kubeconfig,
      pools,
      expected: REAL_PODS,
      pool,
    });
    log(
      `serve: listed ${s(serve.listedMs)}, rebuilt ${s(serve.rebuiltMs)}, ready ${s(serve.readyMs)}, ` +
        `reconciled ${s(serve.reconciledMs)}; VmHWM ${mib(serve.hwmRebuilt)} at rebuilt, ${mib(serve.hwmEnd)} at end`,
    );
    const cli = await cliRebuild({ dir, kubeconfig, pools, expected: REAL_PODS, pool });
    log(`podlease rebuild: ${s(cli.ms)}, VmHWM ${mib(cli.hwm)}`);
    results.real = { pods: REAL_PODS, createMs, listMs, serve, cli };
  }
  if (!phases.includes('churn')) return;

  await createNamespace(api, CHURN_NAMESPACE, CHURN_LABEL);
  const redis = await startRedisServer({ prefix: 'podlease-bench-ctl-redis-' });
  cleanups.push(() => redis.stop());
  const serve = await startServe({ dir, ...certs, kubeconfig, pools, redisUrl: redis.url });
  cleanups.push(() => serve.stop());
  await serve.waitLog('rebuilt and ready', isRebuilt, REBUILD_TIMEOUT_MS);
  const readyDeadline = Date.now() + 30_000;
  while (!(await serve.readyz())) {
    if (Date.now() > readyDeadline)
      throw new Error('podlease serve not ready within 30 s of the rebuild');
    await sleep(100);
  }
  await serve.waitLog('reconcile done', l => l.msg === 'reconcile done', REBUILD_TIMEOUT_MS);
  await registerWebhook(api, serve.port, readFileSync(cluster.caCertPath).toString('base64'), () =>
    serve.webhook.some(l => l.namespace === CHURN_NAMESPACE),
  ).catch(err => {
    throw new Error(
      `${err.message}\npodlease serve webhook log:\n${serve.webhook.map(l => JSON.stringify(l)).join('\n')}`,
    );
  });
  cleanups.push(() =>
    api.call(
      'DELETE',
      `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${WEBHOOK_NAME}`,
    ),
  );
  log(
    `churn: ${CHURN_RATE} pods/s for ${CHURN_SECONDS} s, each deleted ${POD_LIFETIME_MS} ms after creation`,
  );
  const rss = rssSampler(serve.pid);
  const c = await churn(api);
  const releaseDeadline = Date.now() + RELEASE_WAIT_MS;
  const released = () =>
    new Map(
      serve.lines
        .filter(l => l.reason === 'deleted' && l.msg?.startsWith('released '))
        .map(l => [l.pod, l.time]),
    );
  while ([...c.deletions.keys()].some(k => !released().has(k)) && Date.now() < releaseDeadline) {
    await sleep(250);
  }
  rss.stop();
  const rel = released();
  const fromSent = [];
  const fromDone = [];
  for (const [pod, d] of c.deletions) {
    const at = rel.get(pod);
    if (at === undefined) continue;
    fromSent.push(at - d.sent);
    fromDone.push(at - d.done);
  }
  fromSent.sort((a, b) => a - b);
  fromDone.sort((a, b) => a - b);
  const createSorted = [...c.createMs].sort((a, b) => a - b);
  results.churn = {
    ...c.counts,
    total: c.total,
    createSeconds: c.createSeconds,
    deleted: c.deletions.size,
    released: fromSent.length,
    sent: { p50: quantile(fromSent, 0.5), p99: quantile(fromSent, 0.99), max: fromSent.at(-1) },
    done: { p50: quantile(fromDone, 0.5), p99: quantile(fromDone, 0.99), max: fromDone.at(-1) },
    createP50: quantile(createSorted, 0.5),
    createP99: quantile(createSorted, 0.99),
    bound: await serve.metric('podlease_leases_bound_total'),
    hwm: rss.hwm,
  };
  const r = results.churn;
  log(
    `churn: ${r.created} created (${r.createFailed} failed, ${r.skipped} skipped), ${r.deleted} deleted, ` +
      `${r.released} releases seen; delete sent → released p50 ${r.sent.p50} ms, p99 ${r.sent.p99} ms, max ${r.sent.max} ms`,
  );
};

// ---- the report ---------------------------------------------------------------------------------

const verdict = ok => (ok ? 'met' : '**MISSED**');

const markdown = (results, meta) => {
  const out = [
    SECTION,
    '',
    `Command: \`npm run bench:controller${RECORD ? ' -- --record' : ''}\` (BENCH_REAL_PODS=${REAL_PODS} ` +
      `BENCH_SYNTH_PODS=${SYNTH_PODS} BENCH_CHURN_RATE=${CHURN_RATE} BENCH_CHURN_SECONDS=${CHURN_SECONDS} ` +
      `BENCH_POD_LIFETIME_MS=${POD_LIFETIME_MS}) · date: ${meta.date} · Node ${process.version} · ` +
      `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB · ` +
      `redis-server ${meta.redis}` +
      (results.versions
        ? ` · kube-apiserver ${results.versions.kubernetes}, etcd ${results.versions.etcd}`
        : '') +
      ` · load average at start ${meta.load} (the 2 cores were shared with other work)`,
    '',
    'Each rebuild runs against an empty redis-server; "serve" is `podlease serve --controller on ' +
      '--rebuild-settle 0s` from spawn (times from its own log lines and /readyz, polled every 50 ms; ' +
      'in production the 5 s settle wait comes on top); "rebuild" is `podlease rebuild` from spawn to ' +
      'exit. VmHWM is the peak RSS from /proc/<pid>/status, sampled every 50 ms. Every lease was ' +
      'checked in Redis after each rebuild.',
    '',
    '| measure | result | baseline (same run) / target |',
    '| --- | --- | --- |',
    `| \`node -e ''\` start-up | ${s(meta.nodeMs)} | baseline |`,
  ];
  if (results.idle) {
    out.push(
      `| podlease serve --controller on, API server with 1 pod: VmHWM | ${mib(results.idle.hwm)} | baseline (the process itself) |`,
    );
  }
  const part = (label, r, target) => {
    const ok = r.serve.rebuiltMs < target.ms;
    out.push(
      `| ${label}: bare paged metadata list (node:http${label.startsWith('real') ? 's' : ''}, 500/page, median of 3) | ${s(r.listMs)} | baseline |`,
      `| ${label}: ${r.pods} HSETs pipelined through node-redis | ${s(r.redisMs)} | baseline |`,
      `| ${label}: serve, spawn → pod cache synced (first list) | ${s(r.serve.listedMs)} | |`,
      `| ${label}: serve, spawn → pool rebuilt, every lease restored | **${s(r.serve.rebuiltMs)}** | target < ${s(target.ms)}: ${verdict(ok)} |`,
      `| ${label}: serve, of which the rebuild itself (fresh list + restore) | ${s(r.serve.restoreMs)} | |`,
      `| ${label}: serve, spawn → /readyz 200 | ${s(r.serve.readyMs)} | (pool state re-read every 2 s) |`,
      `| ${label}: serve, spawn → first reconcile done | ${s(r.serve.reconciledMs)} | |`,
      `| ${label}: serve, VmHWM at rebuilt / after the reconcile | ${mib(r.serve.hwmRebuilt)} / ${mib(r.serve.hwmEnd)} |` +
        (target.rssKiB
          ? ` target < ${mib(target.rssKiB)}: ${verdict(r.serve.hwmEnd < target.rssKiB)} |`
          : ' |'),
      `| ${label}: \`podlease rebuild\`, spawn → exit | ${s(r.cli.ms)} | |`,
      `| ${label}: \`podlease rebuild\`, VmHWM | ${mib(r.cli.hwm)} | |`,
    );
  };
  if (results.real) {
    out.push(
      `| real: ${REAL_PODS} pods created through the API (${CREATE_CONCURRENCY} in flight) | ${s(results.real.createMs)} | (set-up) |`,
    );
    part(`real ${REAL_PODS / 1000}k`, results.real, { ms: TARGETS.realSeconds * 1000 });
  }
  if (results.synthetic) {
    part(`synthetic ${SYNTH_PODS / 1000}k`, results.synthetic, {
      ms: TARGETS.synthSeconds * 1000,
      rssKiB: TARGETS.synthRssMiB * 1024,
    });
  }
  if (results.churn) {
    const c = results.churn;
    out.push(
      `| churn: pods created / failed / skipped (of ${c.total} scheduled in ${c.createSeconds.toFixed(0)} s) | ${c.created} / ${c.createFailed} / ${c.skipped} | target rate ${CHURN_RATE}/s |`,
      `| churn: pod CREATE through the webhook, p50 / p99 | ${c.createP50.toFixed(0)} ms / ${c.createP99.toFixed(0)} ms | |`,
      `| churn: pods deleted / releases seen / leases bound | ${c.deleted} / ${c.released} / ${c.bound} | |`,
      `| churn: DELETE sent → released (deleted), p50 / p99 / max | **${c.sent.p50} ms / ${c.sent.p99} ms** / ${c.sent.max} ms | |`,
      `| churn: DELETE answered → released, p50 / p99 / max | ${c.done.p50} ms / ${c.done.p99} ms / ${c.done.max} ms | |`,
      `| churn: serve VmHWM at the end (its peak since start, rebuild of ${REAL_PODS} pods included) | ${mib(c.hwm)} | |`,
    );
  }
  out.push('');
  return out.join('\n');
};

/** Replaces (or appends) this bench's section of bench/RESULTS.md. */
const record = section => {
  const file = join(ROOT, 'bench/RESULTS.md');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n';
  const start = text.indexOf(SECTION);
  let out;
  if (start < 0) out = `${text.trimEnd()}\n\n${section}`;
  else {
    const after = text.indexOf('\n## ', start + SECTION.length);
    out = text.slice(0, start) + section + (after < 0 ? '' : text.slice(after + 1));
  }
  writeFileSync(file, out.endsWith('\n') ? out : `${out}\n`);
  log(`recorded in ${file}`);
};

const main = async () => {
  if (!existsSync(PODLEASE_BIN)) throw new Error(`${PODLEASE_BIN} missing: npm run build`);
  const dir = mkdtempSync(join(tmpdir(), 'podlease-bench-controller-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const meta = {
    date: new Date().toISOString().slice(0, 10),
    load: loadavg()
      .map(l => l.toFixed(1))
      .join(' '),
    redis: redisServerVersion() ?? '?',
    nodeMs: nodeStartup(),
  };
  log(`node -e '': ${s(meta.nodeMs)}; load average ${meta.load}`);
  const results = {};
  if (PHASES.includes('synthetic')) {
    await synthetic(dir, results);
    results.synthetic.redisMs = await redisPipeline(SYNTH_PODS);
  }
  if (PHASES.includes('real') || PHASES.includes('churn')) {
    await real(dir, results, PHASES);
    if (results.real) results.real.redisMs = await redisPipeline(REAL_PODS);
  }
  const section = markdown(results, meta);
  console.log(`\n${section}`);
  if (RECORD) record(section);
};

main()
  .then(stopAll, async err => {
    console.error(err);
    await stopAll();
    process.exitCode = 1;
  })
  .then(() => process.exit());
