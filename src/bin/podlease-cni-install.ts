#!/usr/bin/env node
/**
 * `podlease-cni-install`, the CNI DaemonSet's container: installs the plugin, its kubeconfig and
 * token (and the conflist, when given) on the node, then re-checks the token, the CA and the
 * conflist every `--interval` and rewrites what changed, until SIGTERM. `--once` installs and
 * exits. Exit codes: 0 done (or stopped), 1 the install failed, 2 bad flags.
 *
 * The files are left in place on exit: a rolling update of the DaemonSet must not take the
 * plugin away from pods being set up meanwhile.
 */
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  cniInstallUsage,
  loadCniInstallConfig,
  type CniInstallConfig,
} from '../config/cni-install.js';
import { ConfigError } from '../config/errors.js';
import { Installer } from '../cni/install.js';
import { InstallError } from '../cni/errors.js';
import { createLogger, type Logger } from '../log/logger.js';

/** How long a retryable failure (a token not projected yet) waits before the next try. */
const RETRY_DELAY_MS = 2_000;
/** A retryable failure at start-up is retried this many times before the installer gives up. */
const START_ATTEMPTS = 30;

const DEFAULT_PLUGIN = fileURLToPath(new URL('../cni/podlease', import.meta.url));

const installWithRetries = async (
  installer: Installer,
  log: Logger,
  signal: AbortSignal,
): Promise<void> => {
  for (let attempt = 1; ; attempt++) {
    try {
      const report = await installer.install();
      log.info(
        { written: report.written, removedLeftovers: report.removedLeftovers },
        report.written.length > 0 ? 'installed' : 'already installed',
      );
      return;
    } catch (e) {
      const retryable = e instanceof InstallError && e.retryable;
      if (!retryable || attempt >= START_ATTEMPTS || signal.aborted) throw e;
      log.warn({ err: (e as Error).message, attempt }, 'install failed; retrying');
      await sleep(RETRY_DELAY_MS, undefined, { signal }).catch(() => undefined);
    }
  }
};

const keepFresh = async (
  installer: Installer,
  config: CniInstallConfig,
  log: Logger,
  signal: AbortSignal,
): Promise<void> => {
  for (;;) {
    await sleep(config.intervalMs, undefined, { signal }).catch(() => undefined);
    if (signal.aborted) return;
    try {
      const written = await installer.refresh();
      if (written.length > 0) log.info({ written }, 'refreshed');
    } catch (e) {
      // The files in place keep working until the token expires: log and try again next tick.
      log.error({ err: (e as Error).message }, 'refresh failed');
    }
  }
};

const main = async (argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> => {
  let config: CniInstallConfig;
  try {
    config = loadCniInstallConfig(argv, env, DEFAULT_PLUGIN);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`${e.message}\n\n${cniInstallUsage()}`);
    return 2;
  }
  if (config.help) {
    process.stdout.write(cniInstallUsage());
    return 0;
  }
  const log = createLogger({ level: config.logLevel, name: 'podlease-cni-install' });
  const installer = new Installer(config.install);
  const stop = new AbortController();
  const onSignal = (signal: string): void => {
    log.info({ signal }, 'signal received; the installed files stay in place');
    stop.abort();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    await installWithRetries(installer, log, stop.signal);
  } catch (e) {
    log.fatal({ err: (e as Error).message }, 'install failed');
    return 1;
  }
  if (!config.once) await keepFresh(installer, config, log, stop.signal);
  return 0;
};

main(process.argv.slice(2), process.env).then(
  code => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(
      `podlease-cni-install: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    process.exitCode = 1;
  },
);
