#!/usr/bin/env node
/**
 * The `podlease` executable: parses the config once, creates the store and (when an API server
 * is configured) the namespace cache, and runs a command. The only place that wires concrete
 * implementations together.
 */
import { readFileSync } from 'node:fs';
import { loadConfig, type Config } from '../config/config.js';
import { ConfigError } from '../config/errors.js';
import {
  EXIT,
  runCheck,
  runLeases,
  runPools,
  runPoolsInit,
  runRelease,
  runReserve,
  runUnreserve,
  type CommandIo,
} from '../cli/commands.js';
import { startServe, type RunningServe } from '../cli/serve.js';
import { usage } from '../cli/usage.js';
import { loadKubeConfig, NamespaceCache } from '../k8s/namespace-cache.js';
import { apiPodPresence } from '../k8s/pods.js';
import type { PodPresence } from '../webhook/admit.js';
import { createLogger, type Logger } from '../log/logger.js';
import { isPoolError } from '../pool/errors.js';
import { MemoryLeaseStore } from '../pool/memory-store.js';
import { RedisLeaseStore } from '../pool/redis-store.js';
import type { LeaseStore } from '../pool/store.js';
import { NO_NAMESPACES, type NamespaceLookup } from '../webhook/namespaces.js';

const io: CommandIo = {
  stdout: { write: t => process.stdout.write(t) },
  stderr: { write: t => process.stderr.write(t) },
};

const version = (): string =>
  (
    JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    }
  ).version;

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

const runStoreCommand = async (config: Config): Promise<number> => {
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

export const main = async (argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> => {
  let config: Config;
  try {
    config = loadConfig(argv, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.stderr.write(`${err.message}\nRun \`podlease help\` for usage.\n`);
    return EXIT.USAGE;
  }
  const cmd = config.command;
  try {
    switch (cmd.name) {
      case 'help':
        io.stdout.write(usage(cmd.topic));
        return argv.length === 0 ? EXIT.USAGE : EXIT.OK;
      case 'version':
        io.stdout.write(`podlease ${version()}\n`);
        return EXIT.OK;
      case 'serve':
        return await serve(config);
      case 'check':
        return runCheck(cmd, io);
      default:
        return await runStoreCommand(config);
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    io.stderr.write(`podlease ${cmd.name}: ${isPoolError(err) ? message : `failed: ${message}`}\n`);
    return EXIT.FAILED;
  }
};

main(process.argv.slice(2), process.env).then(
  code => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `podlease: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = EXIT.FAILED;
  },
);
