// podlease in the loop of the e2e cluster: a local `podlease serve` process (the built
// dist/bin/podlease.js, run with this Node) on a free loopback port, backed by the run's
// redis-server, with a pools file in a temp dir and a serving certificate issued by the cluster CA
// for 127.0.0.1, registered with the API server by a MutatingWebhookConfiguration (pods CREATE →
// /mutate, sideEffects NoneOnDryRun, failurePolicy Fail) and a ValidatingWebhookConfiguration
// (pods UPDATE → /validate). Both only select namespaces carrying `namespaceLabels`, so
// kube-system and other test files' namespaces are never sent to it.
//
// Optionally a recording proxy sits between the API server and podlease serve and keeps every
// AdmissionReview exchanged (`capture: true`), which is how the fixtures under
// test/fixtures/admission/captured/ were made.
//
// With `controller: true` podlease serve runs its lease controller (`--controller on`, its own
// leader Lease, fast timings) and makes the pools ready itself; test/e2e/controller.test.ts uses it.
/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- @kubernetes/client-node's
   generated models are classes without behaviour; its API is meant to take object literals. */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

import * as k8s from '@kubernetes/client-node';

import { initPools, PODLEASE_BIN, serveArgs } from '../../scripts/lib/podlease-serve.mjs';
import type { PoolStats } from '../../src/pool/store.js';
import { issueCertificate } from './cluster/certs.js';
import {
  claimDir,
  freePort,
  type ManagedProcess,
  startProcess,
  sweepStaleDirs,
  tailFile,
  waitFor,
} from './cluster/process.js';
import { waitUntil } from './cluster/wait.js';

export { PODLEASE_BIN };

const execFileAsync = promisify(execFile);

/** The label key a namespace carries to be served by a podlease instance. */
export const NAMESPACE_LABEL = 'podlease.io/e2e';
const WORK_DIR_PREFIX = 'podlease-e2e-serve-';
const START_TIMEOUT_MS = 30_000;
const REGISTER_TIMEOUT_MS = 30_000;
const PROBE_POOL = 'e2e-probe-no-such-pool';
const NAMESPACE_GONE_TIMEOUT_MS = 90_000;

/** One entry of the pools file (docs/design.md §2). */
export interface PoolSpec {
  readonly name: string;
  readonly cidr: string;
  readonly ranges?: readonly string[];
  readonly exclude?: readonly string[];
  readonly gateway?: string;
  readonly namespaces?: readonly string[];
  readonly default?: boolean;
}

export interface PodleaseOptions {
  readonly kubeconfigPath: string;
  readonly caCertPath: string;
  readonly caKeyPath: string;
  readonly redisUrl: string;
  readonly pools: readonly PoolSpec[];
  /** DNS label naming this instance: webhook configurations, namespace label value, probe namespace. */
  readonly name: string;
  /** Put a recording proxy between the API server and podlease serve (see captured()). */
  readonly capture?: boolean;
  /** Extra `podlease serve` flags. */
  readonly serveArgs?: readonly string[];
  /** Node flags before the script (e.g. `--cpu-prof` for a bench). */
  readonly nodeArgs?: readonly string[];
  /** Webhook timeoutSeconds (default 10). */
  readonly timeoutSeconds?: number;
  /**
   * Run the lease controller (`--controller on`, fast test timings, its own leader Lease): it
   * makes the pools ready. Without it the harness runs `podlease pools init` first.
   */
  readonly controller?: boolean;
}

/** A JSON object as it came over the wire. */
export type Json = Record<string, unknown>;

export interface CapturedExchange {
  readonly endpoint: 'mutate' | 'validate';
  /** The AdmissionReview the API server sent. */
  readonly review: Json;
  /** What podlease serve answered. */
  readonly answer: Json;
}

/** `podlease pools -o json`, one entry. */
export interface PoolStatus {
  readonly name: string;
  readonly cidr: string;
  readonly state: string;
  readonly stats?: Omit<PoolStats, 'pool'>;
}

/** `podlease leases -o json`, one entry. */
export interface LeaseJson {
  readonly id: string;
  readonly pool: string;
  readonly ip: string;
  readonly state: string;
  readonly namespace: string;
  readonly name?: string;
  readonly generateName?: string;
  readonly stickyKey?: string;
}

export interface Podlease {
  readonly name: string;
  /** https://127.0.0.1:<port> the API server calls (the proxy when capturing). */
  readonly webhookUrl: string;
  /** http://127.0.0.1:<port> of /metrics, /healthz, /readyz. */
  readonly metricsUrl: string;
  readonly poolsPath: string;
  readonly logPath: string;
  /** Labels that make a namespace's pods go through this podlease. */
  readonly namespaceLabels: Readonly<Record<string, string>>;
  readonly mutatingWebhookName: string;
  readonly validatingWebhookName: string;
  /**
   * Creates (or re-creates) both webhook configurations and resolves once the API server sends
   * pod creations to podlease (a dry-run probe in the probe namespace gets podlease's denial).
   */
  register(): Promise<void>;
  /** Deletes both webhook configurations and waits until pods are admitted without podlease. */
  unregister(): Promise<void>;
  /**
   * Creates a namespace served by this podlease (labels added), with extra annotations (e.g.
   * `podlease.io/pool`), and waits for its `default` ServiceAccount.
   */
  createNamespace(name: string, annotations?: Readonly<Record<string, string>>): Promise<void>;
  /** Runs `podlease <args> -o json` against the same Redis and pools file; parsed stdout. */
  cli(args: readonly string[]): Promise<unknown>;
  pools(): Promise<PoolStatus[]>;
  leases(pool?: string): Promise<LeaseJson[]>;
  /** Runs `podlease <args> -o json` with the API server's kubeconfig too (check, rebuild). */
  cliKube(args: readonly string[]): Promise<{ code: number; json: unknown; stderr: string }>;
  /** Stops the serve process (SIGKILL: no lease given up), leaving registrations in place. */
  kill(): Promise<void>;
  /** Starts the serve process again with the same flags and waits for /readyz. */
  restart(): Promise<void>;
  /** Starts one more replica (same store, pools and flags, other ports; not registered). */
  replica(): Promise<{
    kill(): Promise<void>;
    stop(): Promise<void>;
    logTail(lines?: number): string;
    metricsUrl: string;
  }>;
  /** The exchanges the recording proxy saw so far (empty unless `capture`). */
  captured(): readonly CapturedExchange[];
  /** The last lines of podlease serve's log, for failure messages. */
  logTail(lines?: number): string;
  /**
   * Unregisters, deletes the namespaces it created and waits (bounded) until they are gone, then
   * stops the process and the proxy. Call it before stopping the kubelet stand-in, which finishes
   * the pods' deletion.
   */
  stop(): Promise<void>;
}

function errorBody(err: unknown): string {
  if (err instanceof k8s.ApiException) {
    const body: unknown = (err as k8s.ApiException<unknown>).body;
    return typeof body === 'string' ? body : JSON.stringify(body);
  }
  return err instanceof Error ? err.message : String(err);
}

/** The message of a Kubernetes API error (the Status body), or the error text. */
export function apiErrorMessage(err: unknown): string {
  const body = errorBody(err);
  try {
    const status = JSON.parse(body) as { message?: unknown };
    return typeof status.message === 'string' ? status.message : body;
  } catch {
    return body;
  }
}

/** The HTTP status of a Kubernetes API error, or undefined. */
export function apiErrorCode(err: unknown): number | undefined {
  return err instanceof k8s.ApiException ? (err as k8s.ApiException<unknown>).code : undefined;
}

async function httpStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 2_000 }, res => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

interface Proxy {
  readonly port: number;
  readonly exchanges: CapturedExchange[];
  close(): Promise<void>;
}

/** An HTTPS server that forwards each POST to `target` and records the exchange. */
async function startRecordingProxy(
  tls: { cert: Buffer; key: Buffer; ca: Buffer },
  target: number,
): Promise<Proxy> {
  const exchanges: CapturedExchange[] = [];
  const forward = (pathAndQuery: string, body: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: target,
          path: pathAndQuery,
          method: 'POST',
          ca: tls.ca,
          headers: { 'Content-Type': 'application/json' },
          timeout: 30_000,
        },
        res => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => {
            resolve({ status: res.statusCode ?? 0, body: text });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('podlease serve did not answer')));
      req.on('error', reject);
      req.end(body);
    });
  const server = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const url = req.url ?? '/';
      forward(url, body).then(
        answer => {
          const endpoint = url.startsWith('/validate') ? 'validate' : 'mutate';
          try {
            exchanges.push({
              endpoint,
              review: JSON.parse(body) as Json,
              answer: JSON.parse(answer.body) as Json,
            });
          } catch {
            // not JSON: nothing worth keeping
          }
          res.writeHead(answer.status, { 'Content-Type': 'application/json' });
          res.end(answer.body);
        },
        (err: unknown) => {
          res.writeHead(502, { 'Content-Type': 'text/plain' });
          res.end(String(err));
        },
      );
    });
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    exchanges,
    close: () =>
      new Promise<void>(resolve => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}

const BARE_CONTAINER = { name: 'app', image: 'registry.invalid/never-pulled:1' };

/** Starts `podlease serve` and resolves once /readyz answers; call register() to put it in the loop. */
export async function startPodlease(opts: PodleaseOptions): Promise<Podlease> {
  sweepStaleDirs(WORK_DIR_PREFIX);
  const workDir = mkdtempSync(path.join(os.tmpdir(), WORK_DIR_PREFIX));
  const pidFile = claimDir(workDir);
  const logPath = path.join(workDir, 'podlease-serve.log');
  const poolsPath = path.join(workDir, 'pools.json');
  writeFileSync(poolsPath, JSON.stringify({ pools: opts.pools }, null, 2) + '\n');
  const caBundle = readFileSync(opts.caCertPath);
  const serving = await issueCertificate(
    workDir,
    { certPath: opts.caCertPath, keyPath: opts.caKeyPath },
    { name: 'webhook', commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'], usage: 'server' },
  );
  const [port, metricsPort] = [await freePort(), await freePort()];
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    REDIS_URL: opts.redisUrl,
    KUBECONFIG: opts.kubeconfigPath,
  };
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(opts.kubeconfigPath);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
  const namespaceLabels = { [NAMESPACE_LABEL]: opts.name };
  const configName = `podlease-e2e-${opts.name}`;
  const probeNamespace = `${opts.name}-probe`;
  const namespaces = new Set<string>();
  let proc: ManagedProcess | undefined;
  let proxy: Proxy | undefined;

  const cleanUp = async (): Promise<void> => {
    await proxy?.close();
    await proc?.stop();
    if (process.env.PODLEASE_E2E_KEEP !== '1') rmSync(workDir, { recursive: true, force: true });
  };

  const modeArgs =
    opts.controller === true
      ? [
          '--controller',
          'on',
          '--leader-elect-namespace',
          'default',
          '--leader-elect-lease',
          `podlease-e2e-${opts.name}`,
          '--leader-lease-duration',
          '3s',
          '--rebuild-settle',
          '300ms',
          '--reconcile-interval',
          '3s',
        ]
      : [
          '--controller',
          'off',
          // Without a controller nothing binds a lease: a recreated StatefulSet pod takes over
          // its predecessor's pending lease (once that pod is gone) without the default 30 s wait.
          '--pending-takeover-after',
          '1ms',
        ];
  const argsFor = (ports: { port: number; metricsPort: number }): string[] => [
    ...(opts.nodeArgs ?? []),
    PODLEASE_BIN,
    ...serveArgs({ ...ports, certPath: serving.certPath, keyPath: serving.keyPath }),
    '--pools',
    poolsPath,
    ...modeArgs,
    ...(opts.serveArgs ?? []),
  ];
  const startServeProcess = async (
    name: string,
    ports: { port: number; metricsPort: number },
    log: string,
  ): Promise<ManagedProcess> => {
    const p = startProcess(name, process.execPath, argsFor(ports), log, pidFile, env);
    await waitFor(
      `${name} /readyz`,
      async () => (await httpStatus(`http://127.0.0.1:${ports.metricsPort}/readyz`)) === 200,
      p,
      START_TIMEOUT_MS,
    );
    return p;
  };
  try {
    // Without a controller the operator's `pools init` makes the pools ready.
    if (opts.controller !== true) {
      await initPools({ args: ['--pools', poolsPath], env: { REDIS_URL: opts.redisUrl } });
    }
    proc = await startServeProcess('podlease serve', { port, metricsPort }, logPath);
    if (opts.capture === true) {
      proxy = await startRecordingProxy(
        {
          cert: readFileSync(serving.certPath),
          key: readFileSync(serving.keyPath),
          ca: caBundle,
        },
        port,
      );
    }
  } catch (err) {
    await cleanUp();
    throw err;
  }
  const webhookUrl = `https://127.0.0.1:${proxy?.port ?? port}`;
  const mutatingWebhookName = 'mutate.podlease.io';
  const validatingWebhookName = 'validate.podlease.io';
  // kube-system is out twice over: it does not carry the label, and it is excluded by name.
  const namespaceSelector = {
    matchLabels: namespaceLabels,
    matchExpressions: [
      {
        key: 'kubernetes.io/metadata.name',
        operator: 'NotIn',
        values: ['kube-system', 'kube-public', 'kube-node-lease'],
      },
    ],
  };
  const podRule = (operation: string): k8s.V1RuleWithOperations => ({
    operations: [operation],
    apiGroups: [''],
    apiVersions: ['v1'],
    resources: ['pods'],
    scope: 'Namespaced',
  });
  const clientConfig = (endpoint: string): k8s.AdmissionregistrationV1WebhookClientConfig => ({
    url: `${webhookUrl}/${endpoint}`,
    caBundle: caBundle.toString('base64'),
  });

  const createNamespace = async (
    name: string,
    annotations: Readonly<Record<string, string>> = {},
  ): Promise<void> => {
    namespaces.add(name);
    await core.createNamespace({
      body: { metadata: { name, labels: { ...namespaceLabels }, annotations: { ...annotations } } },
    });
    // The ServiceAccount admission plugin rejects pods until the controller-manager made this.
    await waitUntil(`serviceaccount ${name}/default`, () =>
      core.readNamespacedServiceAccount({ namespace: name, name: 'default' }),
    );
  };

  /** A dry-run pod naming an unknown pool: podlease denies it, nothing else would. */
  const probe = async (): Promise<'podlease' | 'admitted'> => {
    try {
      await core.createNamespacedPod({
        namespace: probeNamespace,
        dryRun: 'All',
        body: {
          metadata: { generateName: 'probe-', annotations: { 'podlease.io/pool': PROBE_POOL } },
          spec: { containers: [BARE_CONTAINER] },
        },
      });
      return 'admitted';
    } catch (err) {
      const message = apiErrorMessage(err);
      if (message.includes(`podlease: unknown pool "${PROBE_POOL}"`)) return 'podlease';
      throw err;
    }
  };

  const deleteConfigs = async (): Promise<void> => {
    const gone = (err: unknown): undefined => {
      if (apiErrorCode(err) !== 404) throw err;
      return undefined;
    };
    await admission.deleteMutatingWebhookConfiguration({ name: configName }).catch(gone);
    await admission.deleteValidatingWebhookConfiguration({ name: configName }).catch(gone);
  };

  const register = async (): Promise<void> => {
    if (!namespaces.has(probeNamespace)) await createNamespace(probeNamespace);
    await deleteConfigs();
    await admission.createMutatingWebhookConfiguration({
      body: {
        metadata: { name: configName },
        webhooks: [
          {
            name: mutatingWebhookName,
            clientConfig: clientConfig('mutate'),
            rules: [podRule('CREATE')],
            namespaceSelector,
            admissionReviewVersions: ['v1'],
            sideEffects: 'NoneOnDryRun',
            failurePolicy: 'Fail',
            matchPolicy: 'Equivalent',
            reinvocationPolicy: 'Never',
            timeoutSeconds: opts.timeoutSeconds ?? 10,
          },
        ],
      },
    });
    await admission.createValidatingWebhookConfiguration({
      body: {
        metadata: { name: configName },
        webhooks: [
          {
            name: validatingWebhookName,
            clientConfig: clientConfig('validate'),
            rules: [podRule('UPDATE')],
            namespaceSelector,
            admissionReviewVersions: ['v1'],
            sideEffects: 'None',
            failurePolicy: 'Fail',
            matchPolicy: 'Equivalent',
            timeoutSeconds: opts.timeoutSeconds ?? 10,
          },
        ],
      },
    });
    // The API server picks webhook configurations up asynchronously.
    await waitUntil(
      `the API server to call podlease (${webhookUrl}/mutate)`,
      async () => ((await probe()) === 'podlease' ? true : undefined),
      REGISTER_TIMEOUT_MS,
      200,
    );
  };

  const unregister = async (): Promise<void> => {
    await deleteConfigs();
    await waitUntil(
      'the API server to stop calling podlease',
      async () => ((await probe()) === 'admitted' ? true : undefined),
      REGISTER_TIMEOUT_MS,
      200,
    );
  };

  const cli = async (args: readonly string[]): Promise<unknown> => {
    const full = [PODLEASE_BIN, ...args, '--pools', poolsPath, '-o', 'json'];
    try {
      const { stdout } = await execFileAsync(process.execPath, full, {
        env: { ...env, KUBECONFIG: '' },
        timeout: 30_000,
      });
      return JSON.parse(stdout) as unknown;
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr ?? '';
      throw new Error(`podlease ${args.join(' ')} failed: ${stderr || String(err)}`, {
        cause: err,
      });
    }
  };

  const cliKube = async (
    args: readonly string[],
  ): Promise<{ code: number; json: unknown; stderr: string }> => {
    const full = [PODLEASE_BIN, ...args, '--pools', poolsPath, '-o', 'json'];
    try {
      const { stdout, stderr } = await execFileAsync(process.execPath, full, {
        env,
        timeout: 60_000,
      });
      return { code: 0, json: JSON.parse(stdout) as unknown, stderr };
    } catch (err) {
      const e = err as { code?: unknown; stdout?: string; stderr?: string };
      if (typeof e.code !== 'number') throw err;
      let json: unknown;
      try {
        json = JSON.parse(e.stdout ?? '');
      } catch {
        json = undefined;
      }
      return { code: e.code, json, stderr: e.stderr ?? '' };
    }
  };
  let replicas = 0;

  return {
    name: opts.name,
    webhookUrl,
    cliKube,
    async kill() {
      if (proc !== undefined) {
        process.kill(-proc.pid, 'SIGKILL');
        await proc.stop();
      }
    },
    async restart() {
      proc = await startServeProcess('podlease serve', { port, metricsPort }, logPath);
    },
    async replica() {
      replicas++;
      const ports = { port: await freePort(), metricsPort: await freePort() };
      const log = path.join(workDir, `podlease-serve-${replicas}.log`);
      const p = await startServeProcess(`podlease serve replica ${replicas}`, ports, log);
      return {
        metricsUrl: `http://127.0.0.1:${ports.metricsPort}`,
        logTail: lines => tailFile(log, lines),
        stop: () => p.stop(),
        async kill() {
          process.kill(-p.pid, 'SIGKILL');
          await p.stop();
        },
      };
    },
    metricsUrl: `http://127.0.0.1:${metricsPort}`,
    poolsPath,
    logPath,
    namespaceLabels,
    mutatingWebhookName,
    validatingWebhookName,
    register,
    unregister,
    createNamespace,
    cli,
    pools: async () => (await cli(['pools'])) as PoolStatus[],
    leases: async pool => (await cli(['leases', ...(pool ? ['--pool', pool] : [])])) as LeaseJson[],
    captured: () => [...(proxy?.exchanges ?? [])],
    logTail: lines => tailFile(logPath, lines),
    async stop() {
      await deleteConfigs().catch(() => undefined);
      const names = [...namespaces];
      namespaces.clear();
      for (const name of names) await core.deleteNamespace({ name }).catch(() => undefined);
      // The kubelet stand-in finishes the pods' deletion: stop it only after this.
      await waitUntil(
        `namespaces ${names.join(', ')} gone`,
        async () => {
          const left = (await core.listNamespace()).items.map(n => n.metadata?.name);
          return names.some(n => left.includes(n)) ? undefined : true;
        },
        NAMESPACE_GONE_TIMEOUT_MS,
        500,
      ).catch((err: unknown) => {
        console.warn(`podlease e2e: ${String(err)}`);
      });
      await cleanUp();
    },
  };
}
