/**
 * The two API server calls the plugin makes: GET one pod (ADD/CHECK without runtime-passed
 * annotations) and a reachability probe (STATUS). Plain node:https, one connection, no keep-alive,
 * a hard deadline covering connect + TLS + response. Loaded lazily.
 */
import type { IncomingMessage } from 'node:http';
import type { RequestOptions } from 'node:https';
import type { CniPodRef } from './args.js';
import { CNI_ERROR, CniError, describeError } from './errors.js';
import type { ApiConnection } from './kubeconfig.js';
import type { PodInfo } from './pod.js';

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

/** Largest response body read (a pod object is a few KiB; PartialObjectMetadata less). */
const MAX_BODY = 4 * 1024 * 1024;

/** TLS failures that retrying will not fix: they mean the kubeconfig's CA or name is wrong. */
const TLS_CONFIG_ERRORS = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Thrown for transport failures, so callers can map them (ADD: 11, STATUS: 50). */
export class ApiUnreachableError extends Error {
  readonly tlsConfig: boolean;

  constructor(message: string, tlsConfig: boolean) {
    super(message);
    this.name = 'ApiUnreachableError';
    this.tlsConfig = tlsConfig;
  }
}

const joinPath = (server: URL, path: string): string =>
  `${server.pathname.replace(/\/+$/, '')}${path}`;

const requestOptions = (conn: ApiConnection, path: string, accept: string): RequestOptions => {
  const headers: Record<string, string> = { Accept: accept, 'User-Agent': 'podlease-cni' };
  if (conn.authorization !== undefined) headers.Authorization = conn.authorization;
  const options: RequestOptions = {
    method: 'GET',
    host: conn.server.hostname.replace(/^\[|\]$/g, ''),
    port: conn.server.port === '' ? undefined : Number(conn.server.port),
    path: joinPath(conn.server, path),
    headers,
    agent: false,
    rejectUnauthorized: !conn.insecureSkipTlsVerify,
  };
  if (conn.ca !== undefined) options.ca = conn.ca;
  if (conn.cert !== undefined) options.cert = conn.cert;
  if (conn.key !== undefined) options.key = conn.key;
  if (conn.tlsServerName !== undefined) options.servername = conn.tlsServerName;
  return options;
};

const readBody = (
  res: IncomingMessage,
  done: (err: Error | undefined, body: string) => void,
): void => {
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_BODY) res.destroy(new Error(`response larger than ${MAX_BODY} bytes`));
    else chunks.push(chunk);
  });
  res.on('end', () => {
    done(undefined, Buffer.concat(chunks).toString('utf8'));
  });
  res.on('error', e => {
    done(e, '');
  });
};

/** One GET with a deadline; rejects with ApiUnreachableError on any transport failure. */
export const httpGet = async (
  conn: ApiConnection,
  path: string,
  opts: { accept: string; timeoutMs: number },
): Promise<HttpAnswer> => {
  // process.getBuiltinModule, not import(): a dynamic import() would start the ESM loader in
  // the bundled CommonJS executable (~15 ms), and a static import would load TLS on every ADD.
  const { request } =
    conn.server.protocol === 'http:'
      ? process.getBuiltinModule('node:http')
      : process.getBuiltinModule('node:https');
  const target = `${conn.server.origin}${joinPath(conn.server, path)}`;
  return new Promise<HttpAnswer>((resolve, reject) => {
    const fail = (e: unknown): void => {
      const code = (e as NodeJS.ErrnoException | undefined)?.code ?? '';
      reject(
        new ApiUnreachableError(`GET ${target}: ${describeError(e)}`, TLS_CONFIG_ERRORS.has(code)),
      );
    };
    const req = request(requestOptions(conn, path, opts.accept), res => {
      readBody(res, (err, body) => {
        clearTimeout(timer);
        if (err !== undefined) fail(err);
        else resolve({ status: res.statusCode ?? 0, body });
      });
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    req.on('error', e => {
      clearTimeout(timer);
      fail(e);
    });
    req.end();
  });
};

/** Ask for PartialObjectMetadata (annotations and UID only), falling back to the full pod. */
const POD_ACCEPT = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

const statusMessage = (body: string): string => {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not a Status object
  }
  return body.slice(0, 200);
};

const podFromBody = (pod: CniPodRef, body: string): PodInfo => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (e) {
    throw new CniError(
      CNI_ERROR.tryAgainLater,
      `the API server sent an unreadable answer for pod ${pod.namespace}/${pod.name}`,
      describeError(e),
    );
  }
  const meta = (parsed as { metadata?: { uid?: unknown; annotations?: unknown } } | null)?.metadata;
  const annotations: Record<string, string> = {};
  if (typeof meta?.annotations === 'object' && meta.annotations !== null) {
    for (const [k, v] of Object.entries(meta.annotations))
      if (typeof v === 'string') annotations[k] = v;
  }
  return { uid: typeof meta?.uid === 'string' ? meta.uid : undefined, annotations };
};

const httpError = (pod: CniPodRef, answer: HttpAnswer, server: string): CniError => {
  const name = `${pod.namespace}/${pod.name}`;
  const msg = statusMessage(answer.body);
  if (answer.status === 404) {
    return new CniError(
      CNI_ERROR.podNotFound,
      `pod ${name} does not exist in the API server ${server}`,
      msg,
    );
  }
  if (answer.status === 429 || answer.status >= 500) {
    return new CniError(
      CNI_ERROR.tryAgainLater,
      `the API server ${server} answered ${answer.status} for pod ${name}; try again later`,
      msg,
    );
  }
  return new CniError(
    CNI_ERROR.apiServerRefused,
    `the API server ${server} answered ${answer.status} to GET pod ${name}`,
    `${msg} — the kubeconfig's credentials need "get" on pods (check the podlease ClusterRole and its binding)`,
  );
};

/** GET /api/v1/namespaces/NS/pods/NAME; code 11 when the API server cannot be reached. */
export const getPod = async (
  conn: ApiConnection,
  pod: CniPodRef,
  timeoutMs: number,
): Promise<PodInfo> => {
  const path = `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${encodeURIComponent(pod.name)}`;
  let answer: HttpAnswer;
  try {
    answer = await httpGet(conn, path, { accept: POD_ACCEPT, timeoutMs });
  } catch (e) {
    if (!(e instanceof ApiUnreachableError)) throw e;
    throw new CniError(
      e.tlsConfig ? CNI_ERROR.invalidConfig : CNI_ERROR.tryAgainLater,
      e.tlsConfig
        ? `the API server ${conn.server.origin} presented a certificate the kubeconfig does not trust`
        : `the API server ${conn.server.origin} cannot be reached; try again later`,
      e.message,
    );
  }
  if (answer.status !== 200) throw httpError(pod, answer, conn.server.origin);
  return podFromBody(pod, answer.body);
};

/** STATUS: any HTTP answer to GET /version means reachable; code 50 otherwise. */
export const probe = async (conn: ApiConnection, timeoutMs: number): Promise<void> => {
  try {
    await httpGet(conn, '/version', { accept: 'application/json', timeoutMs });
  } catch (e) {
    if (!(e instanceof ApiUnreachableError)) throw e;
    throw new CniError(
      CNI_ERROR.notAvailable,
      `the API server ${conn.server.origin} named in the kubeconfig cannot be reached`,
      e.message,
    );
  }
};
