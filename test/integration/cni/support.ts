/**
 * Shared pieces of the CNI integration suites: the built executable, a throw-away PKI made with
 * openssl, a loopback HTTPS stand-in for the API server, kubeconfig writers, and a bounded spawn.
 * Everything listens on 127.0.0.1 only.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BINARY = join(ROOT, 'dist/cni/podlease');

/** Loud skip, or a hard failure under PODLEASE_REQUIRE_ALL=1 (call from beforeAll). */
export const requireAll = process.env.PODLEASE_REQUIRE_ALL === '1';

/** Builds dist/cni/podlease when it is missing (CI builds it in `pretest`). */
export const ensureBinary = (): string => {
  if (!existsSync(BINARY)) {
    execFileSync(process.execPath, [join(ROOT, 'scripts/build-cni.mjs')], {
      cwd: ROOT,
      stdio: 'inherit',
    });
  }
  return BINARY;
};

export interface Spawned {
  code: number | null;
  stdout: string;
  stderr: string;
  json: unknown;
  ms: number;
}

/** Runs `cmd` with a clean environment plus `env`, stdin `input`; killed after `timeoutMs`. */
export const spawnBounded = (
  cmd: string,
  args: string[],
  env: Record<string, string>,
  input: string,
  timeoutMs = 15_000,
): Promise<Spawned> =>
  new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, {
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', code => {
      clearTimeout(timer);
      let json: unknown;
      try {
        json = stdout.trim() === '' ? undefined : JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, json, ms: performance.now() - t0 });
    });
    child.stdin.end(input);
  });

/** The plugin with CNI_* variables for `command` (pod team-a/web-0 unless args say otherwise). */
export const runPluginBinary = (
  command: string,
  conf: unknown,
  extraEnv: Record<string, string> = {},
): Promise<Spawned> =>
  spawnBounded(
    BINARY,
    [],
    {
      CNI_COMMAND: command,
      CNI_CONTAINERID: 'c0ffee',
      CNI_NETNS: '/var/run/netns/none',
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/usr/lib/cni',
      CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=web-0;K8S_POD_UID=uid-1',
      ...extraEnv,
    },
    typeof conf === 'string' ? conf : JSON.stringify(conf),
  );

export interface Pki {
  dir: string;
  caFile: string;
  ca: Buffer;
  serverCert: Buffer;
  serverKey: Buffer;
  clientCertFile: string;
  clientKeyFile: string;
  clientCert: Buffer;
  clientKey: Buffer;
  /** A second, unrelated CA, to provoke verification failures. */
  otherCaFile: string;
}

export const hasOpenssl = (): boolean => spawnSync('openssl', ['version']).status === 0;

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate, in a temp dir. */
export const makePki = (): Pki => {
  const dir = mkdtempSync(join(tmpdir(), 'podlease-cni-pki-'));
  const ssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  };
  /** A fresh P-256 key, unencrypted, in `<name>.key`. */
  const newKey = (name: string): string[] => [
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
  ];
  const ca = (name: string): void => {
    ssl(
      'req',
      '-x509',
      ...newKey(name),
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
    );
  };
  const leaf = (name: string, subj: string, ext: string): void => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    ssl('req', ...newKey(name), '-out', `${name}.csr`, '-subj', subj);
    ssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    );
  };
  ca('ca');
  ca('other-ca');
  leaf(
    'server',
    '/CN=kube-apiserver',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
  );
  leaf('client', '/O=podlease/CN=podlease-cni', 'extendedKeyUsage=clientAuth\n');
  const read = (f: string): Buffer => readFileSync(join(dir, f));
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    ca: read('ca.crt'),
    serverCert: read('server.crt'),
    serverKey: read('server.key'),
    clientCertFile: join(dir, 'client.crt'),
    clientKeyFile: join(dir, 'client.key'),
    clientCert: read('client.crt'),
    clientKey: read('client.key'),
    otherCaFile: join(dir, 'other-ca.crt'),
  };
};

export interface SeenRequest {
  method: string;
  url: string;
  accept: string | undefined;
  authorization: string | undefined;
  clientCn: string | undefined;
  /** The TLS connection resumed a session (no certificate was sent). */
  resumed: boolean;
}

export interface FakeApiServer {
  url: string;
  port: number;
  /** Pods by `namespace/name`: the JSON object served. */
  pods: Map<string, unknown>;
  requests: SeenRequest[];
  /** Force an HTTP status for pod GETs (e.g. 403, 500); undefined to serve normally. */
  forceStatus: number | undefined;
  close: () => Promise<void>;
}

const POD_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/?]+)$/;

const send = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

const statusBody = (code: number, message: string): unknown => ({
  kind: 'Status',
  apiVersion: 'v1',
  status: 'Failure',
  message,
  code,
});

/**
 * A stand-in for kube-apiserver on 127.0.0.1: GET /version and GET one pod. Accepts the bearer
 * token `token` or a client certificate signed by the PKI's CA; anything else gets 401. `port` 0
 * takes a free one.
 */
export const startFakeApiServer = async (
  pki: Pki,
  token: string,
  port = 0,
): Promise<FakeApiServer> => {
  const state: Omit<FakeApiServer, 'close' | 'url' | 'port'> = {
    pods: new Map(),
    requests: [],
    forceStatus: undefined,
  };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket;
    const peer =
      socket instanceof TLSSocket && socket.authorized ? socket.getPeerCertificate() : undefined;
    const clientCn = peer?.subject.CN;
    state.requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      accept: req.headers.accept,
      authorization: req.headers.authorization,
      clientCn: typeof clientCn === 'string' ? clientCn : undefined,
      resumed: socket instanceof TLSSocket && socket.isSessionReused(),
    });
    if (req.headers.authorization !== `Bearer ${token}` && clientCn === undefined) {
      send(res, 401, statusBody(401, 'Unauthorized'));
      return;
    }
    if (req.url === '/version') {
      send(res, 200, { major: '1', minor: '34', gitVersion: 'v1.34.4-fake' });
      return;
    }
    const m = POD_PATH.exec(req.url ?? '');
    if (req.method !== 'GET' || m === null) {
      send(res, 404, statusBody(404, 'the server could not find the requested resource'));
      return;
    }
    if (state.forceStatus !== undefined) {
      send(res, state.forceStatus, statusBody(state.forceStatus, `forced ${state.forceStatus}`));
      return;
    }
    const key = `${decodeURIComponent(m[1] ?? '')}/${decodeURIComponent(m[2] ?? '')}`;
    const pod = state.pods.get(key);
    if (pod === undefined) send(res, 404, statusBody(404, `pods "${m[2] ?? ''}" not found`));
    else send(res, 200, pod);
  };
  const server = createServer(
    {
      key: pki.serverKey,
      cert: pki.serverCert,
      ca: pki.ca,
      requestCert: true,
      rejectUnauthorized: false,
    },
    handler,
  );
  await new Promise<void>(resolve => {
    server.listen(port, '127.0.0.1', resolve);
  });
  const { port: bound } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `https://127.0.0.1:${bound}`,
    port: bound,
    close: () =>
      new Promise<void>(resolve => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  });
};

export interface KubeconfigOptions {
  server: string;
  cluster?: Record<string, unknown>;
  user?: Record<string, unknown>;
}

/** Writes a kubeconfig in YAML (as the DaemonSet would) and returns its path. */
export const writeKubeconfig = (dir: string, name: string, opts: KubeconfigOptions): string => {
  const indent = (o: Record<string, unknown>, pad: string): string =>
    Object.entries(o)
      .map(([k, v]) => `${pad}${k}: ${JSON.stringify(v)}`)
      .join('\n');
  const text = [
    'apiVersion: v1',
    'kind: Config',
    'current-context: podlease',
    'clusters:',
    '  - name: local',
    '    cluster:',
    indent({ server: opts.server, ...opts.cluster }, '      '),
    'contexts:',
    '  - name: podlease',
    '    context:',
    '      cluster: local',
    '      user: cni',
    'users:',
    '  - name: cni',
    '    user:',
    opts.user === undefined || Object.keys(opts.user).length === 0
      ? '      {}'
      : indent(opts.user, '      '),
    '',
  ].join('\n');
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

/** The pod object the stand-in serves. */
export const podObject = (
  namespace: string,
  name: string,
  uid: string,
  annotations: Record<string, string>,
): unknown => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { namespace, name, uid, annotations },
  spec: { containers: [{ name: 'c', image: 'busybox' }] },
});

export const netconf = (
  kubeconfig: string | undefined,
  extra: Record<string, unknown> = {},
): Record<string, unknown> => ({
  cniVersion: '1.1.0',
  name: 'podlease-it',
  type: 'bridge',
  ipam: kubeconfig === undefined ? { type: 'podlease' } : { type: 'podlease', kubeconfig },
  ...extra,
});
