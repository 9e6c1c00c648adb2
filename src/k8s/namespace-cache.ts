/**
 * A watched cache of namespaces (client-node 2.x `ListWatch`), answering the webhook's
 * `NamespaceLookup` from memory. client-node 2.0 reconnects by itself after a 410 or a client
 * timeout only; on any other error it calls the `error` handlers and stops, so this cache restarts
 * it with capped exponential backoff (1 s → 30 s, the library's own constants).
 *
 * It is `ready()` once a first list has filled it. A namespace it does not hold (not synced yet,
 * or created a moment ago and not yet seen by the watch) is read live, one GET bounded by
 * `lookupTimeoutMs`; concurrent misses for one namespace share that GET.
 */
import { CoreV1Api, KubeConfig, ListWatch, Watch, type V1Namespace } from '@kubernetes/client-node';
import type { KubeConfigSource } from '../config/config.js';
import { isNotFound, withTimeout } from './api.js';
import type { Logger } from '../log/logger.js';

export const BASE_RESTART_DELAY_MS = 1_000;
export const MAX_RESTART_DELAY_MS = 30_000;
/** Longest wait for the live GET of a namespace missing from the cache. */
export const LOOKUP_TIMEOUT_MS = 1_000;

/** The kubeconfig to use: `--kubeconfig`/`KUBECONFIG`, else in-cluster, else none. */
export const loadKubeConfig = (source: KubeConfigSource): KubeConfig | undefined => {
  if (source.kubeconfig === undefined && !source.inCluster) return undefined;
  const kc = new KubeConfig();
  if (source.kubeconfig !== undefined) kc.loadFromFile(source.kubeconfig);
  else kc.loadFromCluster();
  return kc;
};

export interface NamespaceCacheOptions {
  readonly kubeConfig: KubeConfig;
  readonly log: Logger;
  /** Injected in tests: a fake Watch and an immediate delay. */
  readonly watch?: Watch | undefined;
  readonly listFn?:
    (() => Promise<{ items: V1Namespace[]; metadata?: { resourceVersion?: string } }>) | undefined;
  readonly delayFn?: ((ms: number) => Promise<void>) | undefined;
  /** Injected in tests: the live GET of one namespace (default `readNamespace`). */
  readonly readFn?: ((name: string) => Promise<V1Namespace>) | undefined;
  readonly lookupTimeoutMs?: number | undefined;
}

type Annotations = Readonly<Record<string, string>> | undefined;

const sleep = (ms: number): Promise<void> =>
  new Promise(resolve => {
    setTimeout(resolve, ms).unref();
  });

export class NamespaceCache {
  private readonly informer: ListWatch<V1Namespace>;
  private readonly log: Logger;
  private readonly delayFn: (ms: number) => Promise<void>;
  private readonly readFn: (name: string) => Promise<V1Namespace>;
  private readonly lookupTimeoutMs: number;
  /** Live GETs in flight, by namespace. */
  private readonly inFlight = new Map<string, Promise<Annotations>>();
  private delayMs = 0;
  private stopped = false;
  /** True once a first list has filled the cache. */
  synced = false;

  constructor(options: NamespaceCacheOptions) {
    this.log = options.log;
    this.delayFn = options.delayFn ?? sleep;
    const api = options.kubeConfig.makeApiClient(CoreV1Api);
    const listFn = options.listFn ?? (() => api.listNamespace());
    this.readFn = options.readFn ?? (name => api.readNamespace({ name }));
    this.lookupTimeoutMs = options.lookupTimeoutMs ?? LOOKUP_TIMEOUT_MS;
    this.informer = new ListWatch<V1Namespace>(
      '/api/v1/namespaces',
      options.watch ?? new Watch(options.kubeConfig),
      listFn,
      false,
    );
    this.informer.on('add', () => {
      this.delayMs = 0;
    });
    this.informer.on('error', (err: unknown) => {
      void this.restart(err);
    });
  }

  /** Starts watching; never throws (a failed start is retried with backoff). */
  async start(): Promise<void> {
    try {
      await this.informer.start();
      // A failed list inside start() is reported through the error handler, not thrown.
      if (this.informer.latestResourceVersion() !== '' && !this.synced) {
        this.synced = true;
        this.log.info({ namespaces: this.informer.list().length }, 'namespace cache synced');
      }
    } catch (err) {
      await this.restart(err);
    }
  }

  private async restart(err: unknown): Promise<void> {
    if (this.stopped) return;
    this.delayMs = Math.min(
      this.delayMs > 0 ? this.delayMs * 2 : BASE_RESTART_DELAY_MS,
      MAX_RESTART_DELAY_MS,
    );
    this.log.warn({ err, retryInMs: this.delayMs }, 'namespace watch failed; restarting');
    await this.delayFn(this.delayMs);
    if (this.isStopped()) return;
    await this.start();
  }

  /** Read through a method: `stop()` may have run while `restart` slept. */
  private isStopped(): boolean {
    return this.stopped;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer.stop();
  }

  ready(): boolean {
    return this.synced;
  }

  /** From the cache; on a miss, one live GET (404: no annotations; other failures reject). */
  annotations(namespace: string): Promise<Annotations> {
    const cached = this.informer.get(namespace);
    if (cached !== undefined) return Promise.resolve(cached.metadata?.annotations);
    let lookup = this.inFlight.get(namespace);
    if (lookup === undefined) {
      lookup = this.lookup(namespace).finally(() => this.inFlight.delete(namespace));
      this.inFlight.set(namespace, lookup);
    }
    return lookup;
  }

  private async lookup(namespace: string): Promise<Annotations> {
    try {
      const ns = await withTimeout(
        this.readFn(namespace),
        this.lookupTimeoutMs,
        `GET namespace ${namespace}`,
      );
      return ns.metadata?.annotations;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
}
