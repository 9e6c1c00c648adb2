/**
 * A minimal kubeconfig reader for the CNI plugin: server, CA, client certificate, token — without
 * @kubernetes/client-node, whose import alone costs more than the plugin's whole budget. YAML through
 * the `yaml` package, loaded only when needed: a JSON kubeconfig is read with JSON.parse. Relative file paths resolve against the
 * kubeconfig's own directory, as kubectl does. Loaded lazily: ADD with runtime-passed annotations
 * never reaches this module.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { quote } from '../text/quote.js';
import { CNI_ERROR, CniError, describeError } from './errors.js';

/** Everything needed to open an authenticated HTTPS connection to the API server. */
export interface ApiConnection {
  /** The `server` URL; paths are appended to it. */
  readonly server: URL;
  readonly ca: Buffer | undefined;
  readonly cert: Buffer | undefined;
  readonly key: Buffer | undefined;
  /** Value of the `Authorization` header, when the user has a token or basic credentials. */
  readonly authorization: string | undefined;
  readonly insecureSkipTlsVerify: boolean;
  readonly tlsServerName: string | undefined;
  /** Where TLS sessions are cached across invocations (tls-session.ts); none when undefined. */
  readonly sessionDir?: string | undefined;
}

export type ReadFile = (path: string) => Promise<Buffer>;

/**
 * The default ReadFile: a synchronous read (a rejected promise when it fails). The plugin reads
 * three small files and has nothing to do meanwhile; node:fs/promises would load its own modules
 * and hop to the thread pool and back for every open, stat, read and close.
 */
const readFileNow: ReadFile = path =>
  new Promise(resolve => {
    resolve(readFileSync(path));
  });

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const configError = (path: string, problem: string): CniError =>
  new CniError(
    CNI_ERROR.invalidConfig,
    `kubeconfig ${path} is not usable`,
    `${problem}; fix the file the podlease DaemonSet writes or ipam.kubeconfig in the CNI config`,
  );

/** The entry `name` of a kubeconfig list (`clusters`, `users`, `contexts`), unwrapped. */
const named = (
  doc: Json,
  list: string,
  field: string,
  name: string | undefined,
): Json | undefined => {
  const items = doc[list];
  if (!Array.isArray(items)) return undefined;
  const entries = items.filter(isObject);
  const entry =
    name === undefined && entries.length === 1 ? entries[0] : entries.find(e => e.name === name);
  const inner = entry?.[field];
  return isObject(inner) ? inner : undefined;
};

const str = (o: Json | undefined, key: string): string | undefined => {
  const v = o?.[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
};

class Loader {
  readonly path: string;
  readonly readFile: ReadFile;

  constructor(path: string, readFile: ReadFile) {
    this.path = path;
    this.readFile = readFile;
  }

  /** Inline `<key>-data` (base64) wins over the file `<key>`, as in kubectl. */
  async material(o: Json | undefined, key: string): Promise<Buffer | undefined> {
    const data = str(o, `${key}-data`);
    if (data !== undefined) return Buffer.from(data, 'base64');
    const file = str(o, key);
    return file === undefined ? undefined : this.file(file, key);
  }

  /** Reads a file; code 5 (the spec's "failed to access a file") naming its path. */
  async file(file: string, what: string | undefined): Promise<Buffer> {
    const full = isAbsolute(file) ? file : resolve(dirname(this.path), file);
    try {
      return await this.readFile(full);
    } catch (e) {
      throw new CniError(
        CNI_ERROR.ioFailure,
        what === undefined
          ? `cannot read the kubeconfig ${full}`
          : `cannot read ${what} ${full} named in the kubeconfig ${this.path}`,
        `${describeError(e)}; check that the file exists and the container runtime may read it ` +
          '(the podlease DaemonSet writes it), or fix ipam.kubeconfig in the CNI config',
      );
    }
  }

  async authorization(user: Json | undefined): Promise<string | undefined> {
    if (user?.exec !== undefined || user?.['auth-provider'] !== undefined) {
      throw configError(
        this.path,
        'exec and auth-provider credentials are not supported; use a token or a client certificate',
      );
    }
    const token = str(user, 'token');
    if (token !== undefined) return `Bearer ${token}`;
    const tokenFile = str(user, 'tokenFile');
    if (tokenFile !== undefined) {
      const fromFile = (await this.file(tokenFile, 'tokenFile')).toString('utf8').trim();
      if (fromFile === '') throw configError(this.path, `tokenFile ${tokenFile} is empty`);
      return `Bearer ${fromFile}`;
    }
    const username = str(user, 'username');
    const password = str(user, 'password');
    if (username !== undefined && password !== undefined) {
      return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    }
    return undefined;
  }
}

/** JSON (a subset of YAML) skips loading the YAML parser: a few milliseconds per ADD. */
const parseText = async (text: string): Promise<unknown> => {
  if (text.trimStart().startsWith('{')) {
    try {
      return JSON.parse(text);
    } catch {
      // flow-style YAML that is not JSON: let the YAML parser have it
    }
  }
  const { parse } = await import('yaml');
  return parse(text);
};

const parseDoc = async (path: string, text: string): Promise<Json> => {
  let doc: unknown;
  try {
    doc = await parseText(text);
  } catch (e) {
    throw configError(path, `it is not valid YAML (${describeError(e)})`);
  }
  if (!isObject(doc)) throw configError(path, 'it is not a YAML mapping');
  return doc;
};

const parseServer = (path: string, cluster: Json | undefined): URL => {
  const server = str(cluster, 'server');
  if (server === undefined) throw configError(path, 'the current cluster has no "server"');
  try {
    const url = new URL(server);
    if (url.protocol === 'https:' || url.protocol === 'http:') return url;
  } catch {
    // fall through to the error below
  }
  throw configError(path, `server ${quote(server)} is not an http(s) URL`);
};

/** Reads and resolves the kubeconfig at `path` (current context, else its only context). */
export const loadKubeconfig = async (
  path: string,
  readFile: ReadFile = readFileNow,
): Promise<ApiConnection> => {
  const loader = new Loader(path, readFile);
  const doc = await parseDoc(path, (await loader.file(path, undefined)).toString('utf8'));
  const current = str(doc, 'current-context');
  const context = named(doc, 'contexts', 'context', current);
  if (context === undefined) {
    throw configError(
      path,
      current === undefined ? 'it has no current-context' : `context ${quote(current)} is missing`,
    );
  }
  const clusterName = str(context, 'cluster');
  const cluster = named(doc, 'clusters', 'cluster', clusterName);
  if (cluster === undefined) {
    throw configError(
      path,
      clusterName === undefined
        ? 'the context names no cluster'
        : `cluster ${quote(clusterName)} is missing`,
    );
  }
  const userName = str(context, 'user');
  const user = userName === undefined ? undefined : named(doc, 'users', 'user', userName);
  if (userName !== undefined && user === undefined) {
    throw configError(path, `user ${quote(userName)} is missing`);
  }
  return Object.freeze({
    server: parseServer(path, cluster),
    ca: await loader.material(cluster, 'certificate-authority'),
    cert: await loader.material(user, 'client-certificate'),
    key: await loader.material(user, 'client-key'),
    authorization: await loader.authorization(user),
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
    tlsServerName: str(cluster, 'tls-server-name'),
  });
};
