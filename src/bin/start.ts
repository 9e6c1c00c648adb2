/**
 * Start-up wiring of the `podlease` commands that need a store: creates the store (Redis or
 * memory) and, for `serve`, the namespace cache and the servers (serve.ts), then runs the command
 * and closes what it opened. With serve.ts, the only place that wires concrete implementations
 * together; podlease.ts loads it only for these commands, so `help` and `version` stay light.
 */
import type { Config } from '../config/config.js';
import { printCheck, printRebuild } from '../cli/check.js';
import { checkCluster, rebuildCluster } from '../controller/check.js';
import {
  EXIT,
  runLeases,
  runPools,
  runPoolsInit,
  runRelease,
  runReservations,
  runReserve,
  runUnreserve,
  type CommandIo,
} from '../cli/commands.js';
import { loadKubeConfig, NamespaceCache } from '../k8s/namespace-cache.js';
import { apiPodPresence } from '../k8s/pods.js';
import type { PodPresence } from '../webhook/admit.js';
import { createLogger, type Logger } from '../log/logger.js';
import { MemoryLeaseStore } from '../pool/memory-store.js';
import { RedisLeaseStore } from '../pool/redis-store.js';
import type { LeaseStore } from '../pool/store.js';
import { NO_NAMESPACES, type NamespaceLookup } from '../webhook/namespaces.js';
import { startServe, type RunningController, type RunningServe } from './serve.js';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import { ConfigError } from '../config/errors.js';
import { Controller, DEFAULT_CONTROLLER_OPTIONS } from '../controller/controller.js';
import { createControllerMetrics } from '../controller/metrics.js';
import { KubeClient } from '../k8s/client.js';
import { kubeEvents } from '../k8s/events.js';
import { LeaderElector } from '../k8s/leader.js';

const createStore = async (config: Config, clientName: string): Promise<LeaseStore> => {
  if (config.store.kind === 'memory') return new MemoryLeaseStore();
  const redis = config.store.redis;
  return RedisLeaseStore.connect({
    url: config.store.redisUrl ?? '',
    topology: redis?.topology,
    username: redis?.username,
    password: redis?.password,
    tls: redis?.tls,
    ca: redis?.ca,
    minReplicas: redis?.minReplicas,
    commandTimeoutMs: config.store.timeoutMs,
    connectTimeoutMs: Math.max(config.store.timeoutMs, 5_000),
    clientName,
  });
};

const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** The Lease's namespace: the flag, POD_NAMESPACE, the pod's own namespace, else `default`. */
const leaderNamespace = (config: Config): string => {
  const configured = config.serve.controllerConfig.leaderNamespace;
  if (configured !== undefined) return configured;
  try {
    const own = readFileSync(SERVICE_ACCOUNT_NAMESPACE, 'utf8').trim();
    if (own !== '') return own;
  } catch {
    // Not in a pod.
  }
  return 'default';
};

/**
 * The controller and its leader election, when an API server is configured and `--controller`
 * is not `off`. `--controller on` without one is a configuration error, said at start.
 */
const createController = async (
  config: Config,
  store: LeaseStore,
  kc: KubeConfig | undefined,
  log: Logger,
): Promise<((registry: Registry) => RunningController) | undefined> => {
  const cc = config.serve.controllerConfig;
  if (cc.mode === 'off') return undefined;
  if (kc === undefined) {
    if (cc.mode === 'on') {
      throw new ConfigError('podlease serve', [
        '--controller on needs an API server: set --kubeconfig or KUBECONFIG, or run in a pod',
      ]);
    }
    return undefined;
  }
  const client = await KubeClient.create(kc);
  const identity = `${cc.identity ?? hostname()}-${randomBytes(4).toString('hex')}`;
  const clog = log.child({ component: 'controller' });
  return registry => {
    const controller = new Controller({
      store,
      pools: config.pools,
      client,
      log: clog,
      metrics: createControllerMetrics(registry),
      events: kubeEvents(client, clog, identity),
      options: {
        ...DEFAULT_CONTROLLER_OPTIONS,
        reconcileIntervalMs: cc.reconcileIntervalMs,
        rebuildSettleMs: cc.rebuildSettleMs,
        expiryIntervalMs: Math.min(
          DEFAULT_CONTROLLER_OPTIONS.expiryIntervalMs,
          Math.max(250, Math.round(config.serve.webhook.leaseTtlMs / 5)),
        ),
      },
    });
    const elector = new LeaderElector({
      client,
      namespace: leaderNamespace(config),
      name: cc.leaderLeaseName,
      identity,
      leaseDurationMs: cc.leaderLeaseDurationMs,
      log: clog,
      onChange: leader => {
        controller.setLeader(leader);
      },
    });
    return {
      start() {
        controller.start();
        elector.start();
      },
      async stop() {
        await elector.stop();
        await controller.stop();
        client.close();
      },
    };
  };
};

const createNamespaces = (
  config: Config,
  log: Logger,
): {
  lookup: NamespaceLookup;
  pods?: PodPresence;
  kc?: KubeConfig;
  stop: () => Promise<void>;
} => {
  const kc = loadKubeConfig(config.kube);
  if (kc === undefined) {
    log.info('no kubeconfig and not in a cluster: namespace annotations are not read');
    return { lookup: NO_NAMESPACES, stop: () => Promise.resolve() };
  }
  const cache = new NamespaceCache({ kubeConfig: kc, log: log.child({ component: 'namespaces' }) });
  void cache.start();
  return { lookup: cache, pods: apiPodPresence(kc), kc, stop: () => cache.stop() };
};

/** `podlease serve`: runs until SIGTERM or SIGINT, then shuts down gracefully. */
const serve = async (config: Config): Promise<number> => {
  const log = createLogger({ level: config.logLevel });
  const store = await createStore(config, 'podlease-serve');
  const namespaces = createNamespaces(config, log);
  let running: RunningServe;
  try {
    const controller = await createController(config, store, namespaces.kc, log);
    running = await startServe({
      controller,
      config,
      store,
      namespaces: namespaces.lookup,
      pods: namespaces.pods,
      log,
      banner: line => process.stderr.write(`${line}\n`),
    });
  } catch (err) {
    // E.g. a refused pool shrink: let go of the store and the watch so the process exits.
    await namespaces.stop().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw err;
  }
  return new Promise(resolve => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'signal received');
      void namespaces
        .stop()
        .catch(() => undefined)
        .then(() => running.close())
        .then(() => {
          resolve(EXIT.OK);
        });
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
};

const runStoreCommand = async (config: Config, io: CommandIo): Promise<number> => {
  const store = await createStore(config, `podlease-${config.command.name}`);
  try {
    const cmd = config.command;
    switch (cmd.name) {
      case 'pools':
        return cmd.init
          ? await runPoolsInit(config, store, cmd, io)
          : await runPools(config, store, io);
      case 'leases':
        return await runLeases(config, store, cmd, io);
      case 'reservations':
        return await runReservations(config, store, cmd, io);
      case 'reserve':
        return await runReserve(config, store, cmd, io);
      case 'release':
        return await runRelease(config, store, cmd, io);
      case 'unreserve':
        return await runUnreserve(config, store, cmd, io);
      default:
        return EXIT.USAGE;
    }
  } finally {
    await store.close();
  }
};

/** `check` and `rebuild`: the store and the API server of the kubeconfig. */
const runClusterCommand = async (config: Config, io: CommandIo): Promise<number> => {
  const cmd = config.command;
  const kc = loadKubeConfig(config.kube);
  if (kc === undefined) {
    io.stderr.write(
      `podlease ${cmd.name}: needs the API server: set KUBECONFIG or --kubeconfig (or run it in a pod)\n`,
    );
    return EXIT.USAGE;
  }
  if (config.store.kind === 'memory') {
    io.stderr.write(
      `podlease ${cmd.name}: the memory store lives inside \`podlease serve\`; set REDIS_URL or --store\n`,
    );
    return EXIT.USAGE;
  }
  const log = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel });
  const [store, client] = await Promise.all([
    createStore(config, `podlease-${cmd.name}`),
    KubeClient.create(kc),
  ]);
  try {
    if (cmd.name === 'check') {
      const result = await checkCluster({
        store,
        pools: config.pools,
        client,
        log,
        fix: cmd.fix,
        pool: cmd.pool,
      });
      return printCheck(config, cmd, result, io);
    }
    if (cmd.name === 'rebuild') {
      const results = await rebuildCluster({
        store,
        pools: config.pools,
        client,
        log,
        pool: cmd.pool,
      });
      return printRebuild(config, results, io);
    }
    return EXIT.USAGE;
  } finally {
    client.close();
    await store.close();
  }
};

/** Runs every command but `help` and `version`; returns the exit code. */
export const runCommand = async (config: Config, io: CommandIo): Promise<number> => {
  const cmd = config.command;
  if (cmd.name === 'serve') return serve(config);
  if (cmd.name === 'check' || cmd.name === 'rebuild') return runClusterCommand(config, io);
  return runStoreCommand(config, io);
};
