/**
 * `podlease serve`: the admission webhook over HTTPS, metrics and probes over HTTP, pools laid out
 * in the store at start, certificate reloads, graceful shutdown.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { Config, TlsConfig } from '../config/config.js';
import { formatHostPort } from '../config/parse.js';
import type { Logger } from '../log/logger.js';
import type { LeaseStore } from '../pool/store.js';
import { createOpsApp, createWebhookApp } from '../webhook/app.js';
import { within } from '../webhook/deadline.js';
import { createMetrics } from '../webhook/metrics.js';
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
  readonly log: Logger;
  /** Human-facing lines (the loud memory-store warning); stderr in production. */
  readonly banner: (line: string) => void;
}

export interface RunningServe {
  readonly webhook: AddressInfo;
  readonly metrics: AddressInfo;
  readonly reloader: CertificateReloader;
  close(): Promise<void>;
}

const ENSURE_RETRY_MS = 2_000;
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

/** Lays out every pool (`ensurePool … initialize: true`); failures are retried until they pass. */
const ensurePools = async (deps: ServeDeps, stopped: () => boolean): Promise<void> => {
  const pending = new Set(deps.config.pools.pools.values());
  while (pending.size > 0 && !stopped()) {
    for (const pool of [...pending]) {
      try {
        const result = await within(
          deps.store.ensurePool(pool, { initialize: true }),
          deps.config.store.timeoutMs * 5,
          'ensurePool',
        );
        deps.log.info(
          { pool: pool.name, cidr: pool.cidrText, size: pool.layout.size, result },
          `pool ${pool.name}: ${result}`,
        );
        pending.delete(pool);
      } catch (err) {
        deps.log.error(
          { err, pool: pool.name },
          `pool ${pool.name}: could not be laid out in the store; retrying`,
        );
      }
    }
    if (pending.size > 0) await new Promise(r => setTimeout(r, ENSURE_RETRY_MS).unref());
  }
};

export const startServe = async (deps: ServeDeps): Promise<RunningServe> => {
  const { config, store, log } = deps;
  const serve = config.serve;
  let accepting = false;
  let stopping = false;
  ensureDevCertificates(serve.tls, log);
  const pair = readKeyPair(serve.tls);
  const metrics = createMetrics({
    store,
    pools: config.pools,
    statsCacheMs: serve.statsCacheMs,
    statsTimeoutMs: config.store.timeoutMs,
    defaultMetrics: true,
  });
  const app = createWebhookApp({
    store,
    pools: config.pools,
    namespaces: deps.namespaces,
    config: serve.webhook,
    log: log.child({ component: 'webhook' }),
    metrics,
  });
  const https = createHttpsServer(app, pair, serve);
  const ops = createHttpServer(
    createOpsApp({
      store,
      metrics,
      pingTimeoutMs: config.store.timeoutMs,
      accepting: () => accepting && !stopping,
      log,
    }),
  );
  const reloader = new CertificateReloader(https, serve.tls, pair, log);
  await ensurePools(deps, () => stopping);
  const [webhookAt, metricsAt] = await Promise.all([
    listen(https, serve.listen),
    listen(ops, serve.metricsListen),
  ]);
  reloader.start(serve.tls.reloadIntervalMs);
  accepting = true;
  const storeText = store.kind === 'redis' ? 'redis' : 'memory (single replica only)';
  log.info(
    {
      webhook: url('https', webhookAt),
      metrics: url('http', metricsAt),
      store: store.kind,
      pools: [...config.pools.pools.keys()],
      poolsSource: config.poolsSource,
      controller: serve.controller,
    },
    `podlease serving admission on ${url('https', webhookAt)} (/mutate, /validate), metrics on ` +
      `${url('http', metricsAt)}, store ${storeText}, pools from ${config.poolsSource}`,
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
  if (serve.controller === 'on')
    log.warn('--controller on: the controller is not implemented yet (later issue)');
  return {
    webhook: webhookAt,
    metrics: metricsAt,
    reloader,
    async close() {
      if (stopping) return;
      stopping = true;
      log.info({ graceMs: serve.shutdownGraceMs }, 'shutting down: finishing requests in flight');
      reloader.stop();
      await closeGracefully(https, serve.shutdownGraceMs);
      await closeGracefully(ops, 1_000);
      await store.close();
      log.info('stopped');
    },
  };
};
