// A real Kubernetes control plane for e2e tests, run as local processes: etcd, kube-apiserver and
// kube-controller-manager built by build.sh, all listening on 127.0.0.1 only, with a throw-away
// PKI and data directory under a temp dir.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';

import { controlPlaneBinDir, missingBinaries } from './binaries.js';
import { createCa, createServiceAccountKey, issueCertificate, type KeyPair } from './certs.js';
import {
  claimDir,
  freePort,
  killAllSync,
  type ManagedProcess,
  startProcess,
  sweepStaleDirs,
  waitFor,
} from './process.js';

export interface ClusterOptions {
  /** Directory holding etcd, kube-apiserver, kube-controller-manager (default: the build cache). */
  readonly binDir?: string;
  /** Service cluster IP range (default 10.96.0.0/24). */
  readonly serviceClusterIpRange?: string;
  /** kube-controller-manager --controllers (default: DEFAULT_CONTROLLERS). */
  readonly controllers?: readonly string[];
  /** Extra flags, appended last so they win. */
  readonly apiserverArgs?: readonly string[];
  readonly controllerManagerArgs?: readonly string[];
  /** Keep the temp dir (PKI, logs, etcd data) after stop(); also env PODLEASE_E2E_KEEP=1. */
  readonly keepWorkDir?: boolean;
  /** Per-component start timeout. */
  readonly startTimeoutMs?: number;
}

export interface Cluster {
  /** https://127.0.0.1:<port> */
  readonly server: string;
  /** Admin kubeconfig (client certificate with O=system:masters). */
  readonly kubeconfigPath: string;
  /** CA that signed the API server's serving certificate and the client certificates. */
  readonly caCertPath: string;
  readonly caKeyPath: string;
  /** Admin client certificate and key (also referenced by the kubeconfig). */
  readonly adminCertPath: string;
  readonly adminKeyPath: string;
  /** Temp dir with pki/, logs/ (etcd.log, kube-apiserver.log, kube-controller-manager.log), etcd/. */
  readonly workDir: string;
  readonly logDir: string;
  readonly etcdEndpoint: string;
  /** Stops the processes (process groups) and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export const DEFAULT_CONTROLLERS = [
  'deployment',
  'replicaset',
  'statefulset',
  'daemonset',
  'job',
  'garbagecollector',
  'namespace',
  'serviceaccount',
  'serviceaccount-token',
  'root-ca-cert-publisher',
] as const;

const DEFAULT_START_TIMEOUT_MS = 90_000;
const WORK_DIR_PREFIX = 'podlease-e2e-cluster-';

interface Pki {
  readonly ca: KeyPair;
  readonly serving: KeyPair;
  readonly admin: KeyPair;
  readonly controllerManager: KeyPair;
  readonly sa: { privateKeyPath: string; publicKeyPath: string };
}

async function createPki(dir: string, serviceIp: string): Promise<Pki> {
  mkdirSync(dir, { recursive: true });
  const ca = await createCa(dir);
  const [serving, admin, controllerManager, sa] = await Promise.all([
    issueCertificate(dir, ca, {
      name: 'apiserver',
      commonName: 'kube-apiserver',
      usage: 'server',
      ipAddresses: ['127.0.0.1', serviceIp],
      dnsNames: [
        'localhost',
        'kubernetes',
        'kubernetes.default',
        'kubernetes.default.svc',
        'kubernetes.default.svc.cluster.local',
      ],
    }),
    issueCertificate(dir, ca, {
      name: 'admin',
      commonName: 'podlease-e2e-admin',
      organizations: ['system:masters'],
      usage: 'client',
    }),
    // Runs every controller under its own identity (--use-service-account-credentials=false),
    // so it needs more than the system:kube-controller-manager role grants.
    issueCertificate(dir, ca, {
      name: 'controller-manager',
      commonName: 'system:kube-controller-manager',
      organizations: ['system:masters'],
      usage: 'client',
    }),
    createServiceAccountKey(dir),
  ]);
  return { ca, serving, admin, controllerManager, sa };
}

function writeKubeconfig(file: string, server: string, ca: string, user: KeyPair): void {
  // JSON is YAML: kubectl and @kubernetes/client-node read it as a kubeconfig.
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'podlease-e2e', cluster: { server, 'certificate-authority': ca } }],
    users: [
      {
        name: 'podlease-e2e',
        user: { 'client-certificate': user.certPath, 'client-key': user.keyPath },
      },
    ],
    contexts: [
      {
        name: 'podlease-e2e',
        context: { cluster: 'podlease-e2e', user: 'podlease-e2e', namespace: 'default' },
      },
    ],
    'current-context': 'podlease-e2e',
  };
  writeFileSync(file, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
}

/** Collects a response's status and UTF-8 body; `timeout` bounds the socket's idle time. */
const collect = (
  req: http.ClientRequest,
  resolve: (r: HttpAnswer) => void,
  reject: (e: Error) => void,
): void => {
  req.on('response', (res: http.IncomingMessage) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => (body += chunk));
    res.on('end', () => {
      resolve({ status: res.statusCode ?? 0, body });
    });
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', reject);
};

interface HttpAnswer {
  status: number;
  body: string;
}

async function httpGet(url: string): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    collect(http.get(url, { timeout: 2_000 }), resolve, reject);
  });
}

/** GET against the API server as admin; resolves with status and body. */
export async function apiGet(
  cluster: Pick<Cluster, 'server' | 'caCertPath' | 'adminCertPath' | 'adminKeyPath'>,
  apiPath: string,
): Promise<HttpAnswer> {
  const agentOptions = {
    ca: readFileSync(cluster.caCertPath),
    cert: readFileSync(cluster.adminCertPath),
    key: readFileSync(cluster.adminKeyPath),
  };
  return new Promise((resolve, reject) => {
    collect(
      https.get(new URL(apiPath, cluster.server), { ...agentOptions, timeout: 5_000 }),
      resolve,
      reject,
    );
  });
}

/** The first address of a CIDR plus one: the ClusterIP of the `kubernetes` Service. */
function firstServiceIp(cidr: string): string {
  const [base] = cidr.split('/');
  const octets = (base ?? '').split('.').map(Number);
  if (octets.length !== 4 || octets.some(o => !Number.isInteger(o))) {
    throw new Error(`serviceClusterIpRange must be an IPv4 CIDR, got ${cidr}`);
  }
  const last = octets[3] ?? 0;
  return [...octets.slice(0, 3), last + 1].join('.');
}

/**
 * Starts etcd, kube-apiserver and kube-controller-manager and resolves once the API server is
 * ready, the `default` namespace exists and the controller-manager has created its `default`
 * ServiceAccount. On failure everything started so far is stopped and the error carries the last
 * lines of the failing component's log.
 */
export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const binDir = opts.binDir ?? controlPlaneBinDir();
  const missing = missingBinaries(binDir);
  if (missing.length > 0) {
    throw new Error(
      `control-plane binaries missing in ${binDir}: ${missing.join(', ')} (run test/e2e/cluster/build.sh)`,
    );
  }
  const timeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const serviceRange = opts.serviceClusterIpRange ?? '10.96.0.0/24';
  sweepStaleDirs(WORK_DIR_PREFIX);
  const workDir = mkdtempSync(path.join(os.tmpdir(), WORK_DIR_PREFIX));
  const pidFile = claimDir(workDir);
  const keep = opts.keepWorkDir === true || process.env.PODLEASE_E2E_KEEP === '1';
  const logDir = path.join(workDir, 'logs');
  const pkiDir = path.join(workDir, 'pki');
  mkdirSync(logDir);

  const procs: ManagedProcess[] = [];
  let stopped = false;
  const onExit = (): void => {
    killAllSync();
    if (!keep) rmSync(workDir, { recursive: true, force: true });
  };
  process.on('exit', onExit);
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // reverse start order: controller-manager, apiserver, etcd
    for (const p of [...procs].reverse()) await p.stop();
    process.off('exit', onExit);
    if (!keep) rmSync(workDir, { recursive: true, force: true });
  };

  try {
    const pki = await createPki(pkiDir, firstServiceIp(serviceRange));
    const [etcdClientPort, etcdPeerPort, apiPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const etcdEndpoint = `http://127.0.0.1:${etcdClientPort}`;
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;

    const etcd = startProcess(
      'etcd',
      path.join(binDir, 'etcd'),
      [
        '--name=e2e',
        `--data-dir=${path.join(workDir, 'etcd')}`,
        `--listen-client-urls=${etcdEndpoint}`,
        `--advertise-client-urls=${etcdEndpoint}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=e2e=${peerUrl}`,
        '--initial-cluster-state=new',
        '--unsafe-no-fsync',
        '--log-level=warn',
      ],
      path.join(logDir, 'etcd.log'),
      pidFile,
    );
    procs.push(etcd);
    await waitFor(
      'etcd /health',
      async () => (await httpGet(`${etcdEndpoint}/health`)).body.includes('"health":"true"'),
      etcd,
      timeoutMs,
    );

    const server = `https://127.0.0.1:${apiPort}`;
    const apiserver = startProcess(
      'kube-apiserver',
      path.join(binDir, 'kube-apiserver'),
      [
        `--etcd-servers=${etcdEndpoint}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        `--cert-dir=${pkiDir}`,
        `--tls-cert-file=${pki.serving.certPath}`,
        `--tls-private-key-file=${pki.serving.keyPath}`,
        `--client-ca-file=${pki.ca.certPath}`,
        '--authorization-mode=Node,RBAC',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${pki.sa.publicKeyPath}`,
        `--service-account-signing-key-file=${pki.sa.privateKeyPath}`,
        `--service-cluster-ip-range=${serviceRange}`,
        // 127.0.0.1 may not be an Endpoints address; the `kubernetes` Service is not needed here.
        '--endpoint-reconciler-type=none',
        '--allow-privileged=true',
        '--profiling=false',
        ...(opts.apiserverArgs ?? []),
      ],
      path.join(logDir, 'kube-apiserver.log'),
      pidFile,
    );
    procs.push(apiserver);
    const partial = {
      server,
      caCertPath: pki.ca.certPath,
      adminCertPath: pki.admin.certPath,
      adminKeyPath: pki.admin.keyPath,
    };
    await waitFor(
      'kube-apiserver /readyz',
      async () => (await apiGet(partial, '/readyz')).status === 200,
      apiserver,
      timeoutMs,
    );
    await waitFor(
      'namespace default',
      async () => (await apiGet(partial, '/api/v1/namespaces/default')).status === 200,
      apiserver,
      timeoutMs,
    );

    const kubeconfigPath = path.join(workDir, 'admin.kubeconfig');
    writeKubeconfig(kubeconfigPath, server, pki.ca.certPath, pki.admin);
    const kcmKubeconfig = path.join(workDir, 'controller-manager.kubeconfig');
    writeKubeconfig(kcmKubeconfig, server, pki.ca.certPath, pki.controllerManager);

    const controllerManager = startProcess(
      'kube-controller-manager',
      path.join(binDir, 'kube-controller-manager'),
      [
        `--kubeconfig=${kcmKubeconfig}`,
        `--controllers=${(opts.controllers ?? DEFAULT_CONTROLLERS).join(',')}`,
        `--service-account-private-key-file=${pki.sa.privateKeyPath}`,
        `--root-ca-file=${pki.ca.certPath}`,
        '--use-service-account-credentials=false',
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        '--secure-port=0',
        `--service-cluster-ip-range=${serviceRange}`,
        ...(opts.controllerManagerArgs ?? []),
      ],
      path.join(logDir, 'kube-controller-manager.log'),
      pidFile,
    );
    procs.push(controllerManager);
    await waitFor(
      'kube-controller-manager to create serviceaccount default/default',
      async () =>
        (await apiGet(partial, '/api/v1/namespaces/default/serviceaccounts/default')).status ===
        200,
      controllerManager,
      timeoutMs,
    );

    return {
      ...partial,
      kubeconfigPath,
      caKeyPath: pki.ca.keyPath,
      workDir,
      logDir,
      etcdEndpoint,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
