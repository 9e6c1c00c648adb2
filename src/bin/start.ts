/**
 * Start-up wiring of the `podlease` commands that need a store: creates the store (Redis or
 * memory) and, for `serve`, the namespace cache and the servers (serve.ts), then runs the command
 * and closes what it opened. With serve.ts, the only place that wires concrete implementations
 * together; podlease.ts loads it only for these commands, so `help` and `version` stay light.
 */
import type { Config } from '../config/config.js';
import {
  EXIT,
  runCheck,
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
import { startServe, type RunningServe } from './serve.js';

const createStore = async (config: Config, clientName: string): Promise<LeaseStore> => {
  if (config.store.kind === 'memory') return new MemoryLeaseStore();
  return RedisLeaseStore.connect({
    url: config.store.redisUrl ?? '',
    commandTimeoutMs: config.store.timeoutMs,
    connectTimeoutMs: Math.max(config.store.timeoutMs, 5_000),
    clientName,
  });
};

const createNamespaces = (
  config: Config,
  log: Logger,
): { lookup: NamespaceLookup; pods?: PodPresence; stop: () => Promise<void> } => {
  const kc = loadKubeConfig(config.kube);
  if (kc === undefined) {
    log.info('no kubeconfig and not in a cluster: namespace annotations are not read');
    return { lookup: NO_NAMESPACES, stop: () => Promise.resolve() };
  }
  const cache = new NamespaceCache({ kubeConfig: kc, log: log.child({ component: 'namespaces' }) });
  void cache.start();
  return { lookup: cache, pods: apiPodPresence(kc), stop: () => cache.stop() };
};

/** `podlease serve`: runs until SIGTERM or SIGINT, then shuts down gracefully. */
const serve = async (config: Config): Promise<number> => {
  const log = createLogger({ level: config.logLevel });
  const store = await createStore(config, 'podlease-serve');
  const namespaces = createNamespaces(config, log);
  let running: RunningServe;
  try {
    running = await startServe({
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

/** Runs every command but `help` and `version`; returns the exit code. */
export const runCommand = async (config: Config, io: CommandIo): Promise<number> => {
  const cmd = config.command;
  if (cmd.name === 'serve') return serve(config);
  if (cmd.name === 'check') return runCheck(cmd, io);
  return runStoreCommand(config, io);
};
