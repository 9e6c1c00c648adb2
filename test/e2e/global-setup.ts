// vitest globalSetup of the e2e project: checks the prerequisites, builds the control plane (a
// no-op when cached), starts it and a redis-server once for the whole run and provides their
// coordinates to tests.
//
// Missing prerequisites skip the e2e tests with a loud reason (inject('e2eSkip')), unless
// PODLEASE_REQUIRE_ALL=1, in which case the run fails.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import * as path from 'node:path';

import type { TestProject } from 'vitest/node';

import { buildControlPlane, controlPlaneBinDir, missingBinaries } from './cluster/binaries.js';
import { type Cluster, startCluster } from './cluster/cluster.js';
import { PODLEASE_CNI_DIR, SYSTEM_CNI_DIR } from './cluster/kubelet.js';
import { type Redis, redisServerInstalled, startRedis } from './cluster/redis.js';
import { PODLEASE_BIN } from './podlease.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Why the e2e tests cannot run here; '' when they can. */
    e2eSkip: string;
    /** Admin kubeconfig of the e2e cluster ('' when skipped). */
    kubeconfigPath: string;
    /** https://127.0.0.1:<port> */
    server: string;
    /** CA of the cluster; its key can sign webhook serving certificates the API server trusts. */
    caCertPath: string;
    caKeyPath: string;
    /** Directory with the control-plane logs. */
    clusterLogDir: string;
    /** redis://127.0.0.1:<port> of the run's redis-server, for `podlease serve` ('' when skipped). */
    e2eRedisUrl: string;
  }
}

function commandWorks(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function goAvailable(): boolean {
  return commandWorks(process.env.GO ?? 'go', ['version']) || executable('/usr/local/go/bin/go');
}

/** Every missing prerequisite, as a human-readable list. */
export function missingPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.platform !== 'linux') missing.push(`Linux (this is ${process.platform})`);
  if (process.getuid?.() !== 0) missing.push('root (network namespaces and the CNI bridge)');
  if (!commandWorks('ip', ['netns', 'list'])) missing.push('`ip netns` (apt-get install iproute2)');
  for (const plugin of ['bridge', 'host-local']) {
    if (!executable(path.join(SYSTEM_CNI_DIR, plugin))) {
      missing.push(`${SYSTEM_CNI_DIR}/${plugin} (apt-get install containernetworking-plugins)`);
    }
  }
  if (!commandWorks('openssl', ['version'])) missing.push('openssl (apt-get install openssl)');
  if (!redisServerInstalled()) missing.push('redis-server (apt-get install redis-server)');
  if (!commandWorks('ping', ['-V'])) missing.push('ping (apt-get install iputils-ping)');
  for (const built of [PODLEASE_BIN, path.join(PODLEASE_CNI_DIR, 'podlease')]) {
    if (!existsSync(built)) missing.push(`${built} (npm run build)`);
  }
  const absent = missingBinaries();
  if (absent.length > 0 && !goAvailable()) {
    missing.push(
      `control-plane binaries (${absent.join(', ')} not in ${controlPlaneBinDir()}) and no Go toolchain to build them`,
    );
  }
  return missing;
}

function banner(lines: string[]): void {
  const bar = '!'.repeat(78);
  console.warn(['', bar, ...lines.map(l => `!! ${l}`), bar, ''].join('\n'));
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const provideAll = (skip: string, cluster?: Cluster, redis?: Redis): void => {
    project.provide('e2eSkip', skip);
    project.provide('kubeconfigPath', cluster?.kubeconfigPath ?? '');
    project.provide('server', cluster?.server ?? '');
    project.provide('caCertPath', cluster?.caCertPath ?? '');
    project.provide('caKeyPath', cluster?.caKeyPath ?? '');
    project.provide('clusterLogDir', cluster?.logDir ?? '');
    project.provide('e2eRedisUrl', redis?.url ?? '');
  };

  const missing = missingPrerequisites();
  if (missing.length > 0) {
    const reason = `e2e prerequisites missing: ${missing.join('; ')}`;
    if (process.env.PODLEASE_REQUIRE_ALL === '1') {
      throw new Error(`${reason} (PODLEASE_REQUIRE_ALL=1, so this run fails)`);
    }
    banner([
      'E2E TESTS SKIPPED',
      ...missing.map(m => `missing: ${m}`),
      'Set PODLEASE_REQUIRE_ALL=1 to fail instead.',
    ]);
    provideAll(reason);
    return async () => {};
  }

  const buildStart = Date.now();
  const binDir = await buildControlPlane(line => {
    console.log(line);
  });
  const clusterStart = Date.now();
  const redis = await startRedis();
  let cluster: Cluster;
  try {
    cluster = await startCluster({ binDir });
  } catch (err) {
    await redis.stop();
    throw err;
  }
  console.log(
    `e2e cluster ${cluster.server} ready in ${Date.now() - clusterStart} ms (build check ${clusterStart - buildStart} ms); logs in ${cluster.logDir}; redis ${redis.url}`,
  );
  provideAll('', cluster, redis);
  return async () => {
    await Promise.all([cluster.stop(), redis.stop()]);
  };
}
