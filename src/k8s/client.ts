/**
 * A small API server client for what the generated client-node API cannot do: lists and watches
 * as `PartialObjectMetadata` (metadata only, so 100k pods fit in memory), paged lists, and
 * watches read line by line. Authentication and TLS come from client-node's `KubeConfig`
 * (`applyToHTTPSOptions`); everything is one `node:https` request with a deadline.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { createInterface } from 'node:readline';
import type { KubeConfig } from '@kubernetes/client-node';

/** `Accept` of a metadata-only list (`PartialObjectMetadataList`), JSON as a fallback. */
export const ACCEPT_METADATA_LIST =
  'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
/** `Accept` of a metadata-only watch (each event's object is a `PartialObjectMetadata`). */
export const ACCEPT_METADATA =
  'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

/** The API server answered with a status other than 2xx. */
export class ApiStatusError extends Error {
  readonly status: number;
  /** `Status.reason`, e.g. `NotFound`, `Conflict`, `Expired`, `AlreadyExists`. */
  readonly reason: string;
  readonly retryable: boolean;
  constructor(status: number, reason: string, message: string) {
    super(`API server answered ${status} ${reason}: ${message}`);
    this.name = new.target.name;
    this.status = status;
    this.reason = reason;
    this.retryable = status === 429 || status >= 500;
  }
}

export interface RequestOptions {
  readonly method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly accept?: string;
  readonly body?: unknown;
  readonly contentType?: string;
  readonly timeoutMs: number;
}

export interface WatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: unknown;
}

export interface WatchHandle {
  /** Resolves when the stream ends (server timeout, error, or `abort`); rejects on a failed start. */
  readonly done: Promise<void>;
  abort(): void;
}

const statusOf = (body: string): { reason: string; message: string } => {
  try {
    const s = JSON.parse(body) as { reason?: unknown; message?: unknown };
    return {
      reason: typeof s.reason === 'string' ? s.reason : '',
      message: typeof s.message === 'string' ? s.message : body.slice(0, 300),
    };
  } catch {
    return { reason: '', message: body.slice(0, 300) };
  }
};

/** Credentials are read again this often (a projected service-account token rotates). */
const CREDENTIALS_REFRESH_MS = 60_000;

export class KubeClient {
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly kc: KubeConfig;
  private options: https.RequestOptions;
  private optionsAt = Date.now();

  private constructor(kc: KubeConfig, base: URL, options: https.RequestOptions) {
    this.kc = kc;
    this.base = base;
    this.options = options;
    this.agent =
      base.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, maxSockets: 32, ...pickTls(options) })
        : new http.Agent({ keepAlive: true, maxSockets: 32 });
  }

  static async create(kc: KubeConfig): Promise<KubeClient> {
    const cluster = kc.getCurrentCluster();
    if (cluster === null) throw new Error('the kubeconfig has no current cluster');
    const options: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(options);
    return new KubeClient(kc, new URL(cluster.server), options);
  }

  /** One request; parses the JSON answer. Non-2xx answers reject with `ApiStatusError`. */
  async request<T>(path: string, opts: RequestOptions): Promise<T> {
    const res = await this.open(path, opts);
    // Decoded as it arrives: a list page (~1 MB for 500 pods) is never also one Buffer.
    res.setEncoding('utf8');
    let text = '';
    for await (const chunk of res) text += chunk as string;
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299) {
      const s = statusOf(text);
      throw new ApiStatusError(status, s.reason, s.message);
    }
    return JSON.parse(text) as T;
  }

  /**
   * A watch: `onEvent` is called for every line. The stream is given up when nothing arrives for
   * `idleTimeoutMs` (the server sends bookmarks, so a silent stream is a dead one).
   */
  watch(
    path: string,
    opts: { accept?: string; idleTimeoutMs: number },
    onEvent: (event: WatchEvent) => void,
  ): WatchHandle {
    let request: http.ClientRequest | undefined;
    const state = { aborted: false };
    const done = (async () => {
      const res = await this.open(
        path,
        { accept: opts.accept, timeoutMs: opts.idleTimeoutMs },
        r => {
          request = r;
          if (state.aborted) r.destroy();
        },
      );
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        const chunks: Buffer[] = [];
        for await (const chunk of res) chunks.push(chunk as Buffer);
        const s = statusOf(Buffer.concat(chunks).toString('utf8'));
        throw new ApiStatusError(status, s.reason, s.message);
      }
      const lines = createInterface({ input: res, crlfDelay: Infinity });
      try {
        for await (const line of lines) {
          if (state.aborted) break;
          if (line === '') continue;
          onEvent(JSON.parse(line) as WatchEvent);
        }
      } catch (err) {
        if (!state.aborted) throw err;
      }
    })();
    return {
      done,
      abort() {
        state.aborted = true;
        request?.destroy();
      },
    };
  }

  /** The authorization header as of now: re-read once a minute. */
  private async headersNow(): Promise<Record<string, string> | undefined> {
    if (Date.now() - this.optionsAt > CREDENTIALS_REFRESH_MS) {
      const options: https.RequestOptions = {};
      await this.kc.applyToHTTPSOptions(options);
      this.options = options;
      this.optionsAt = Date.now();
    }
    return this.options.headers as Record<string, string> | undefined;
  }

  private async open(
    path: string,
    opts: Omit<RequestOptions, 'timeoutMs'> & { timeoutMs: number },
    started?: (req: http.ClientRequest) => void,
  ): Promise<http.IncomingMessage> {
    const url = new URL(path, this.base);
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers: Record<string, string> = {
      ...(await this.headersNow()),
      accept: opts.accept ?? 'application/json',
      'user-agent': 'podlease-controller',
    };
    if (body !== undefined) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request(url, {
        ...pickTls(this.options),
        agent: this.agent,
        method: opts.method ?? 'GET',
        headers,
        timeout: opts.timeoutMs,
      });
      started?.(req);
      req.on('timeout', () => {
        req.destroy(
          new Error(`no answer from the API server within ${opts.timeoutMs} ms (${url.pathname})`),
        );
      });
      req.on('error', reject);
      req.on('response', resolve);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

const pickTls = (
  o: https.RequestOptions,
): Pick<https.AgentOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized' | 'servername'> => ({
  ...(o.ca === undefined ? {} : { ca: o.ca }),
  ...(o.cert === undefined ? {} : { cert: o.cert }),
  ...(o.key === undefined ? {} : { key: o.key }),
  ...(o.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: o.rejectUnauthorized }),
  ...(o.servername === undefined ? {} : { servername: o.servername }),
});

/** The API server answered 404. */
export const isApiNotFound = (err: unknown): boolean =>
  err instanceof ApiStatusError && err.status === 404;
