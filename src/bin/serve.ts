/**
 * `podlease serve`: the admission webhook over HTTPS, metrics and probes over HTTP, pools laid out
 * in the store at start, certificate reloads, graceful shutdown.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Config, TlsConfig } from '../config/config.js';
import { formatHostPort } from '../config/parse.js';
import type { Logger } from '../log/logger.js';
import type { Pool } from '../pool/pools-file.js';
import type { EnsureResult, LeaseStore } from '../pool/store.js';
import { createUiApp } from '../ui/app.js';
import { createOpsApp, createWebhookApp } from '../webhook/app.js';
import { within } from '../webhook/deadline.js';
import { createMetrics } from '../webhook/metrics.js';
import type { PodPresence } from '../webhook/admit.js';
import type { NamespaceLookup } from '../webhook/namespaces.js';
import {
  CertificateReloader,
  closeGracefully,
  createHttpServer,
  createHttpsServer,
  listen,
  readKeyPair,
} from '../webhook/server.js';

export interface ServeDeps {
  readonly config: Config;
  readonly store: LeaseStore;
  readonly namespaces: NamespaceLookup;
  /** Whether a pod exists, from the API server; absent without one. */
  readonly pods?: PodPresence | undefined;
  readonly log: Logger;
  /** Human-facing lines (the loud memory-store warning); stderr in production. */
  readonly banner: (line: string) => void;
  /** The lease controller, made once the metrics registry exists; absent without an API server. */
  readonly controller?: ((registry: Registry) => RunningController) | undefined;
}

/** The controller and its leader election, as serve starts and stops them. */
export interface RunningController {
  start(): void;
  stop(): Promise<void>;
}

export interface RunningServe {
  readonly webhook: AddressInfo;
  readonly metrics: AddressInfo;
  /** The pool map, when `--ui-listen` is set. */
  readonly ui: AddressInfo | undefined;
  readonly reloader: CertificateReloader;
  close(): Promise<void>;
}

const POOL_CHECK_MS = 2_000;
export const DEV_CERT_SCRIPT = fileURLToPath(
  new URL('../../certs/gen-dev-certs.sh', import.meta.url),
);

/** With the default paths and no files there, makes dev certificates (certs/gen-dev-certs.sh). */
export const ensureDevCertificates = (tls: TlsConfig, log: Logger): void => {
  if (!tls.isDefault || (existsSync(tls.certPath) && existsSync(tls.keyPath))) return;
  const dir = dirname(resolve(tls.certPath));
  log.warn(
    { dir },
    'no serving certificate at the default path: generating development certificates',
  );
  execFileSync('bash', [DEV_CERT_SCRIPT, dir], { stdio: ['ignore', 'ignore', 'inherit'] });
};

const url = (scheme: string, a: AddressInfo): string =>
  `${scheme}://${formatHostPort({ host: a.address, port: a.port })}`;

const logPoolResult = (log: Logger, pool: Pool, result: EnsureResult): void => {
  if (result === 'uninitialised') {
    log.warn(
      { pool: pool.name },
      `pool ${pool.name} has no state in the store: admission answers 503 until the ` +
        'controller rebuilds it, or run `podlease pools init` (no pod uses it yet) or ' +
        '`podlease rebuild`',
    );
    return;
  }
  log.info(
    { pool: pool.name, cidr: pool.cidrText, size: pool.layout.size, result },
    `pool ${pool.name}: ${result}`,
  );
};

/**
 * One pass over the pools: lays each out in the store (a changed pools file is laid out again,
 * atomically, keeping every lease). Only the memory store initialises a pool itself; a Redis pool
 * whose epoch is missing (first install, wiped or restarted Redis) stays unready until the
 * controller rebuilds it or an operator runs `podlease pools init`: a webhook replica never makes
 * a pool ready on its own. Returns the pools that are not ready; throws an error that retrying
 * cannot fix (a refused shrink).
 */
const layOutPools = async (deps: ServeDeps, quiet: boolean): Promise<Set<string>> => {
  const notReady = new Set<string>();
  // The memory store has no earlier state: alone it initialises itself; with a controller the
  // controller rebuilds it from the pods first (pods admitted before a restart keep their address).
  const initialize = deps.store.kind === 'memory' && deps.controller === undefined;
  for (const pool of deps.config.pools.pools.values()) {
    try {
      const result = await within(
        deps.store.ensurePool(pool, { initialize }),
        deps.config.store.timeoutMs * 5,
        'ensurePool',
      );
      if (result === 'uninitialised') notReady.add(pool.name);
      if (!quiet || result === 'relaid') logPoolResult(deps.log, pool, result);
    } catch (err) {
      // A refused shrink or a broken pool does not heal by waiting: only `retryable` is retried.
      if ((err as { retryable?: unknown } | null)?.retryable !== true) throw err;
      notReady.add(pool.name);
      if (!quiet) {
        deps.log.error({ err, pool: pool.name }, `pool ${pool.name}: cannot check it in the store`);
      }
    }
  }
  return notReady;
};

export const startServe = async (deps: ServeDeps): Promise<RunningServe> => {
  const { config, store, log } = deps;
  const serve = config.serve;
  let accepting = false;
  let stopping = false;
  let closing: Promise<void> | undefined;
  ensureDevCertificates(serve.tls, log);
  const pair = readKeyPair(serve.tls);
  const metrics = createMetrics({
    store,
    pools: config.pools,
    statsCacheMs: serve.statsCacheMs,
    statsTimeoutMs: config.store.timeoutMs,
    reuseCooldownMs: config.reuseCooldownMs,
    defaultMetrics: true,
  });
  const app = createWebhookApp({
    store,
    pools: config.pools,
    namespaces: deps.namespaces,
    pods: deps.pods,
    config: serve.webhook,
    log: log.child({ component: 'webhook' }),
    metrics,
  });
  // Once stopping, every answer closes its connection: the API server reconnects, to a replica
  // that is still ready.
  const https = createHttpsServer(
    (req, res) => {
      if (stopping) res.setHeader('connection', 'close');
      app(req, res);
    },
    pair,
    serve,
  );
  const ops = createHttpServer(
    createOpsApp({
      store,
      metrics,
      pingTimeoutMs: config.store.timeoutMs,
      accepting: () => accepting && !stopping && notReady.size === 0,
      namespacesReady: () => deps.namespaces.ready(),
      log,
    }),
  );
  const reloader = new CertificateReloader(https, serve.tls, pair, log);
  let notReady = await layOutPools(deps, false);
  const controller = deps.controller?.(metrics.registry);
  controller?.start();
  const ui =
    serve.uiListen === undefined
      ? undefined
      : createHttpServer(
          createUiApp({
            store,
            pools: config.pools,
            reuseCooldownMs: config.reuseCooldownMs,
            log: log.child({ component: 'ui' }),
          }),
        );
  const [webhookAt, metricsAt, uiAt] = await Promise.all([
    listen(https, serve.listen),
    listen(ops, serve.metricsListen),
    ui === undefined || serve.uiListen === undefined ? undefined : listen(ui, serve.uiListen),
  ]);
  reloader.start(serve.tls.reloadIntervalMs);
  accepting = true;
  // Pools are checked again and again: a pool rebuilt elsewhere becomes ready, a wiped one
  // (its epoch gone) unready, a pools file changed by another replica is laid out.
  let wasReady = notReady.size === 0;
  const poolCheck = setInterval(() => {
    layOutPools(deps, true)
      .then(pools => {
        notReady = pools;
        const ready = pools.size === 0;
        if (ready !== wasReady) {
          log.warn({ notReady: [...pools] }, ready ? 'every pool is ready' : 'pools not ready');
        }
        wasReady = ready;
      })
      .catch((err: unknown) => {
        notReady = new Set(config.pools.pools.keys());
        log.error({ err }, 'the pools cannot be laid out in the store');
      });
  }, POOL_CHECK_MS);
  poolCheck.unref();
  const storeText = store.kind === 'redis' ? 'redis' : 'memory (single replica only)';
  log.info(
    {
      webhook: url('https', webhookAt),
      metrics: url('http', metricsAt),
      store: store.kind,
      pools: [...config.pools.pools.keys()],
      poolsSource: config.poolsSource,
      controller: serve.controller,
      ui: uiAt === undefined ? undefined : url('http', uiAt),
    },
    `podlease serving admission on ${url('https', webhookAt)} (/mutate, /validate), metrics on ` +
      `${url('http', metricsAt)}, store ${storeText}, pools from ${config.poolsSource}` +
      (uiAt === undefined ? '' : `, pool map on ${url('http', uiAt)}`),
  );
  if (store.kind === 'memory') {
    log.warn(
      'the memory store is for a single replica only: leases live in this process and are lost on restart',
    );
    deps.banner(
      '*** podlease: MEMORY STORE — SINGLE REPLICA ONLY. Leases live in this process and are lost on restart;\n' +
        '*** two replicas would hand out the same addresses. Set REDIS_URL for anything but development. ***',
    );
  }
  return {
    webhook: webhookAt,
    metrics: metricsAt,
    ui: uiAt,
    reloader,
    close() {
      closing ??= (async () => {
        stopping = true; // /readyz answers 503 from now on
        clearInterval(poolCheck);
        log.info(
          { delayMs: serve.shutdownDelayMs, graceMs: serve.shutdownGraceMs },
          'shutting down: not ready; still serving until the API server stops sending requests',
        );
        reloader.stop();
        // The Lease is given up at once: another replica's controller takes over while this
        // one still answers admissions.
        await controller?.stop().catch((err: unknown) => {
          log.warn({ err }, 'controller did not stop cleanly');
        });
        await new Promise(r => setTimeout(r, serve.shutdownDelayMs));
        log.info({ graceMs: serve.shutdownGraceMs }, 'shutting down: finishing requests in flight');
        await closeGracefully(https, serve.shutdownGraceMs);
        await closeGracefully(ops, 1_000);
        if (ui !== undefined) await closeGracefully(ui, 1_000);
        await store.close();
        log.info('stopped');
      })();
      return closing;
    },
  };
};
