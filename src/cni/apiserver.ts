/**
 * The two API server calls the plugin makes: GET one pod (ADD/CHECK without runtime-passed
 * annotations) and a reachability probe (STATUS). One connection, `Connection: close`, a hard
 * deadline covering connect + TLS + response. `node:tls` (or `node:net` for an http:// server)
 * with the request written by hand and the answer read by http-response.ts: `node:https` would
 * load the HTTP client, agent, server and parser modules on top of TLS (several milliseconds per
 * ADD). Loaded lazily.
 */
import type { Socket } from 'node:net';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { clip } from '../text/quote.js';
import { addrFamily } from './addr.js';
import type { CniPodRef } from './args.js';
import { CNI_ERROR, CniError, describeError } from './errors.js';
import { HttpBodyTooLargeError, ResponseReader, type HttpAnswer } from './http-response.js';
import type { ApiConnection } from './kubeconfig.js';
import type { PodInfo } from './pod.js';
import { sessionCache } from './tls-session.js';

export type { HttpAnswer } from './http-response.js';

/** Largest response body read (a pod object is a few KiB; PartialObjectMetadata less). */
export const MAX_BODY = 4 * 1024 * 1024;

/** TLS failures that retrying will not fix: they mean the kubeconfig's CA or name is wrong. */
const TLS_CONFIG_ERRORS = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The answer was cut off at MAX_BODY: it was received, but it is not a pod (or a version). */
export class ApiResponseTooLargeError extends Error {
  constructor(target: string) {
    super(`GET ${target}: the response is larger than ${MAX_BODY} bytes (4 MiB), the most read`);
    this.name = 'ApiResponseTooLargeError';
  }
}

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

/** The request, as node:https wrote it (Host with the port unless it is the default). */
const requestText = (conn: ApiConnection, path: string, accept: string): string => {
  const auth = conn.authorization === undefined ? '' : `Authorization: ${conn.authorization}\r\n`;
  return (
    `GET ${joinPath(conn.server, path)} HTTP/1.1\r\nHost: ${conn.server.host}\r\n` +
    `Accept: ${accept}\r\nUser-Agent: podlease-cni\r\n${auth}Connection: close\r\n\r\n`
  );
};

/** Code 7 for a CA, certificate or key of the kubeconfig that OpenSSL cannot use. */
const unusableMaterial = (conn: ApiConnection, what: string, e: unknown): CniError =>
  new CniError(
    CNI_ERROR.invalidConfig,
    `the kubeconfig's ${what} for the API server ${conn.server.origin} is not usable`,
    `${describeError(e)}; fix ${what} (or ${what}-data) in the kubeconfig`,
  );

/**
 * The CAs the server certificate is checked against: the kubeconfig's, else Node's bundled roots
 * (and NODE_EXTRA_CA_CERTS), as node:https did. Set as the process's default list, which is only
 * parsed when the connection is made: the executable starts with `--use-openssl-ca`
 * (scripts/build-cni.mjs), so loading node:tls does not parse Node's ~150 bundled roots on a
 * second thread, and a `ca` connection option would make Node build that root store (and wait
 * for it) all the same, or, under that flag, read OpenSSL's system store. The plugin is a
 * one-shot process that makes one connection, so the default list is its own.
 */
const trustCas = (tls: typeof import('node:tls'), conn: ApiConnection): void => {
  if (conn.ca !== undefined) {
    try {
      tls.setDefaultCACertificates([conn.ca]);
    } catch (e) {
      throw unusableMaterial(conn, 'certificate-authority', e);
    }
  } else if (!conn.insecureSkipTlsVerify) {
    tls.setDefaultCACertificates([
      ...tls.getCACertificates('bundled'),
      ...tls.getCACertificates('extra'),
    ]);
  }
};

/** The TLS options node:https would have used for `conn` (no `ca`: see trustCas). */
const tlsOptions = (conn: ApiConnection, host: string): ConnectionOptions => {
  const options: ConnectionOptions = {
    host,
    port: Number(conn.server.port || 443),
    rejectUnauthorized: !conn.insecureSkipTlsVerify,
    servername: conn.tlsServerName ?? (addrFamily(host) === 0 ? host : undefined),
  };
  if (conn.cert !== undefined) options.cert = conn.cert;
  if (conn.key !== undefined) options.key = conn.key;
  return options;
};

/**
 * A TCP or TLS connection to the server. TLS as node:https set it up: SNI with the host name
 * (never an IP address) unless the kubeconfig names a `tls-server-name`, the certificate checked
 * against the kubeconfig's CA and that name. A session cached by an earlier invocation is offered
 * for resumption (tls-session.ts).
 */
const open = (conn: ApiConnection): Socket => {
  const host = conn.server.hostname.replace(/^\[|\]$/g, '');
  if (conn.server.protocol === 'http:') {
    return process
      .getBuiltinModule('node:net')
      .connect({ host, port: Number(conn.server.port || 80) });
  }
  const tls = process.getBuiltinModule('node:tls');
  trustCas(tls, conn);
  const options = tlsOptions(conn, host);
  const cache = conn.sessionDir === undefined ? undefined : sessionCache(conn.sessionDir, conn);
  const session = cache?.load();
  if (session !== undefined) options.session = session;
  let socket: TLSSocket;
  try {
    socket = tls.connect(options);
  } catch (e) {
    // The context is built here: a client certificate or key OpenSSL refuses.
    throw unusableMaterial(conn, 'client-certificate/client-key', e);
  }
  if (cache !== undefined) {
    // Kept from full handshakes only (a resumed one changed nothing the next ADD needs); the
    // ticket arrives before the answer, and a server may send several: the first is kept.
    socket.once('session', (fresh: Buffer) => {
      if (!socket.isSessionReused()) cache.save(fresh);
    });
  }
  return socket;
};

/**
 * One GET with a deadline; rejects with ApiUnreachableError on any transport failure (a
 * malformed or cut-short answer included) and with ApiResponseTooLargeError for a body over
 * MAX_BODY. The connection is closed as soon as the answer is complete.
 */
export const httpGet = async (
  conn: ApiConnection,
  path: string,
  opts: { accept: string; timeoutMs: number },
): Promise<HttpAnswer> => {
  const target = `${conn.server.origin}${joinPath(conn.server, path)}`;
  return new Promise<HttpAnswer>((resolve, reject) => {
    // process.getBuiltinModule, not import(): a dynamic import() would start the ESM loader in
    // the bundled CommonJS executable (~15 ms), and a static import would load TLS on every ADD.
    const socket = open(conn);
    const reader = new ResponseReader(MAX_BODY);
    let settled = false;
    const settle = (e: unknown, answer: HttpAnswer | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (answer !== undefined) {
        // The plugin exits on this answer before an immediate runs: destroying the socket now
        // would cost a millisecond for nothing (net's destroy even creates process.stderr).
        setImmediate(() => socket.destroy());
        resolve(answer);
        return;
      }
      socket.destroy();
      if (e instanceof HttpBodyTooLargeError) reject(new ApiResponseTooLargeError(target));
      else {
        const code = (e as NodeJS.ErrnoException | undefined)?.code ?? '';
        reject(
          new ApiUnreachableError(
            `GET ${target}: ${describeError(e)}`,
            TLS_CONFIG_ERRORS.has(code),
          ),
        );
      }
    };
    const read = (next: () => HttpAnswer | undefined): void => {
      try {
        const answer = next();
        if (answer !== undefined) settle(undefined, answer);
      } catch (e) {
        settle(e, undefined);
      }
    };
    const timer = setTimeout(() => {
      settle(new Error(`no answer within ${opts.timeoutMs} ms`), undefined);
    }, opts.timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      read(() => reader.push(chunk));
    });
    socket.on('end', () => {
      read(() => reader.end());
    });
    socket.on('error', e => {
      settle(e, undefined);
    });
    socket.on('close', () => {
      settle(new Error('the connection closed before the answer arrived'), undefined);
    });
    // Written now, sent once connected (and, for TLS, once the handshake is done); not end():
    // a half-closed connection can make a Go server cancel the request.
    socket.write(requestText(conn, path, opts.accept));
  });
};

/** Ask for PartialObjectMetadata (annotations and UID only), falling back to the full pod. */
const POD_ACCEPT = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

/** Most characters of an error answer that go into `details`. */
const MAX_DETAIL = 200;

const statusMessage = (body: string): string => {
  try {
    const parsed = JSON.parse(body) as { message?: unknown } | null;
    if (typeof parsed?.message === 'string') return clip(parsed.message, MAX_DETAIL);
  } catch {
    // not a Status object
  }
  return clip(body, MAX_DETAIL);
};

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** What a parsed answer is, for "not a Pod object" messages. */
const describeJson = (v: unknown): string => {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a JSON list';
  if (!isObject(v)) return `a JSON ${typeof v}`;
  return typeof v.kind === 'string'
    ? `an object of kind ${JSON.stringify(clip(v.kind))}`
    : 'an object without metadata';
};

/** Kinds a pod GET may answer with (the Accept header asks for PartialObjectMetadata first). */
const POD_KINDS = new Set(['Pod', 'PartialObjectMetadata']);

/** The metadata of a Pod (or PartialObjectMetadata) object; undefined when it is not one. */
const podMetadata = (parsed: unknown): Record<string, unknown> | undefined => {
  if (!isObject(parsed) || !isObject(parsed.metadata)) return undefined;
  const kind = parsed.kind;
  if (kind !== undefined && (typeof kind !== 'string' || !POD_KINDS.has(kind))) return undefined;
  const annotations = parsed.metadata.annotations;
  if (annotations !== undefined && annotations !== null && !isObject(annotations)) return undefined;
  return parsed.metadata;
};

const CHECK_SERVER = (server: string): string =>
  `the runtime retries; if this persists, check that the kubeconfig's server ${server} is the ` +
  'Kubernetes API server and not a proxy or another service';

const podFromBody = (pod: CniPodRef, body: string, server: string): PodInfo => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (e) {
    throw new CniError(
      CNI_ERROR.tryAgainLater,
      `the API server ${server} sent an unreadable answer for pod ${pod.namespace}/${pod.name}`,
      `${describeError(e)}; ${CHECK_SERVER(server)}`,
    );
  }
  const meta = podMetadata(parsed);
  if (meta === undefined) {
    throw new CniError(
      CNI_ERROR.tryAgainLater,
      `the API server ${server} answered GET pod ${pod.namespace}/${pod.name} with something that ` +
        `is not a Pod object (${describeJson(parsed)})`,
      CHECK_SERVER(server),
    );
  }
  const annotations: Record<string, string> = {};
  if (isObject(meta.annotations)) {
    for (const [k, v] of Object.entries(meta.annotations))
      if (typeof v === 'string') annotations[k] = v;
  }
  return { uid: typeof meta.uid === 'string' ? meta.uid : undefined, annotations };
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
  if (answer.status >= 300 && answer.status < 400) {
    const to = answer.location === undefined ? '' : ` to ${clip(answer.location, MAX_DETAIL)}`;
    return new CniError(
      CNI_ERROR.invalidConfig,
      `the API server ${server} answered GET pod ${name} with an unexpected redirect (status ${answer.status}${to})`,
      "the plugin does not follow redirects: set the kubeconfig's server to the API server's own " +
        'URL (https://host:port, as kubectl uses it)',
    );
  }
  if (answer.status === 429 || answer.status >= 500) {
    return new CniError(
      CNI_ERROR.tryAgainLater,
      `the API server ${server} answered ${answer.status} for pod ${name}; try again later`,
      msg,
    );
  }
  if (answer.status >= 400) {
    return new CniError(
      CNI_ERROR.apiServerRefused,
      `the API server ${server} answered ${answer.status} to GET pod ${name}`,
      `${msg} — the kubeconfig's credentials need "get" on pods (check the podlease ClusterRole and its binding)`,
    );
  }
  return new CniError(
    CNI_ERROR.tryAgainLater,
    `the API server ${server} answered GET pod ${name} with unexpected status ${answer.status} (expected 200)`,
    `${msg}; ${CHECK_SERVER(server)}`,
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
    if (e instanceof ApiResponseTooLargeError) {
      throw new CniError(
        CNI_ERROR.tryAgainLater,
        `the API server ${conn.server.origin} answered GET pod ${pod.namespace}/${pod.name} with ` +
          `more than ${MAX_BODY} bytes (4 MiB), larger than any pod`,
        `${e.message}; ${CHECK_SERVER(conn.server.origin)}`,
      );
    }
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
  return podFromBody(pod, answer.body, conn.server.origin);
};

/** STATUS: any HTTP answer to GET /version means reachable; code 50 otherwise. */
export const probe = async (conn: ApiConnection, timeoutMs: number): Promise<void> => {
  try {
    await httpGet(conn, '/version', { accept: 'application/json', timeoutMs });
  } catch (e) {
    if (e instanceof ApiResponseTooLargeError) {
      throw new CniError(
        CNI_ERROR.notAvailable,
        `the API server ${conn.server.origin} named in the kubeconfig answered GET /version with ` +
          `more than ${MAX_BODY} bytes (4 MiB)`,
        `${e.message}; check that the kubeconfig's server is the Kubernetes API server`,
      );
    }
    if (!(e instanceof ApiUnreachableError)) throw e;
    throw new CniError(
      CNI_ERROR.notAvailable,
      `the API server ${conn.server.origin} named in the kubeconfig cannot be reached`,
      e.message,
    );
  }
};
