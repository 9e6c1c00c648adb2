/**
 * List-then-watch of one resource, kept as a map of small records (`slim`), not of the objects:
 * the pod informer of the controller holds 100k pods in a few tens of MiB. Lists are paged
 * (`limit` + `continue`, one consistent snapshot) and, for pods, metadata only
 * (`PartialObjectMetadata`). The watch asks for bookmarks; a 410 Gone, a failed watch or
 * `resync()` lists again, and that fresh list is compared with the map: what vanished during the
 * gap is reported deleted, what changed is reported again. Restarts back off 1 s → 30 s
 * (client-node's constants). Handlers are called synchronously, in order; they must not throw.
 */
import {
  ACCEPT_METADATA,
  ACCEPT_METADATA_LIST,
  ApiStatusError,
  type KubeClient,
  type WatchEvent,
} from './client.js';
import type { Logger } from '../log/logger.js';

export const BASE_RESTART_DELAY_MS = 1_000;
export const MAX_RESTART_DELAY_MS = 30_000;
export const LIST_PAGE_SIZE = 500;
const LIST_TIMEOUT_MS = 60_000;
/** The server ends a watch after this long (jittered), and sends bookmarks meanwhile. */
const WATCH_SECONDS = 240;
const WATCH_IDLE_TIMEOUT_MS = 150_000;

/** The slice of an object a consumer keeps; `rv` is its resourceVersion. */
export interface Slim {
  readonly rv: string;
}

export interface ObjectMeta {
  readonly uid?: string;
  readonly name?: string;
  readonly namespace?: string;
  readonly resourceVersion?: string;
  readonly deletionTimestamp?: string;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly labels?: Readonly<Record<string, string>>;
  readonly ownerReferences?: readonly {
    readonly apiVersion?: string;
    readonly kind?: string;
    readonly name?: string;
    readonly uid?: string;
    readonly controller?: boolean;
  }[];
}

export interface KubeObject {
  readonly metadata?: ObjectMeta;
}

export interface InformerHandlers<T extends Slim> {
  upsert?(key: string, item: T, old: T | undefined): void;
  delete?(key: string, old: T): void;
  /** After every complete list (the first one: the informer is synced). */
  synced?(count: number): void;
  /** A watch or list failed; the informer restarts after `delayMs`. */
  restart?(err: unknown, delayMs: number): void;
}

export interface InformerOptions<T extends Slim> {
  readonly client: KubeClient;
  /** Collection path, e.g. `/api/v1/pods` or `/apis/apps/v1/statefulsets`. */
  readonly path: string;
  readonly metadataOnly: boolean;
  readonly fieldSelector?: string | undefined;
  /** Keeps what matters of an object, or undefined to keep nothing (treated as absent). */
  slim(obj: KubeObject): T | undefined;
  readonly log: Logger;
  readonly handlers: InformerHandlers<T>;
  readonly pageSize?: number | undefined;
  /** Injected in tests. */
  readonly delayFn?: ((ms: number) => Promise<void>) | undefined;
}

interface ListPage {
  readonly metadata?: { readonly resourceVersion?: string; readonly continue?: string };
  readonly items?: readonly KubeObject[];
}

const sleep = (ms: number): Promise<void> =>
  new Promise(resolve => {
    setTimeout(resolve, ms).unref();
  });

/** The key of every informer: the object's UID (a recreated object is another object). */
const keyOf = (obj: KubeObject): string | undefined => obj.metadata?.uid;

export class Informer<T extends Slim> {
  readonly items = new Map<string, T>();
  synced = false;
  /** Restarts after a failure (a metric). */
  restarts = 0;
  private readonly options: InformerOptions<T>;
  private readonly delayFn: (ms: number) => Promise<void>;
  private resourceVersion = '';
  private stopped = false;
  private abortWatch: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private readonly listWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];

  constructor(options: InformerOptions<T>) {
    this.options = options;
    this.delayFn = options.delayFn ?? sleep;
  }

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abortWatch?.();
    await this.running;
    for (const w of this.listWaiters.splice(0)) w.reject(new Error('informer stopped'));
  }

  /** Lists again now (a fresh, quorum read); resolves once that list is in the map. */
  resync(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.listWaiters.push({ resolve, reject });
      this.resourceVersion = '';
      this.abortWatch?.();
    });
  }

  private isStopped(): boolean {
    return this.stopped;
  }

  private async loop(): Promise<void> {
    let delayMs = 0;
    while (!this.isStopped()) {
      try {
        await this.listIfNeeded();
        delayMs = 0;
        await this.watchOnce();
      } catch (err) {
        if (this.isStopped()) break;
        if (err instanceof ApiStatusError && err.status === 410) {
          // Too old a resourceVersion: list again at once (a fresh snapshot closes the gap).
          this.resourceVersion = '';
          continue;
        }
        this.restarts++;
        delayMs = Math.min(delayMs > 0 ? delayMs * 2 : BASE_RESTART_DELAY_MS, MAX_RESTART_DELAY_MS);
        this.resourceVersion = '';
        this.options.handlers.restart?.(err, delayMs);
        await this.delayFn(delayMs);
      }
    }
  }

  private async listIfNeeded(): Promise<void> {
    if (this.resourceVersion !== '') return;
    const waiters = this.listWaiters.splice(0);
    try {
      await this.list();
    } catch (err) {
      // The waiters wait for the next list that succeeds.
      this.listWaiters.push(...waiters);
      throw err;
    }
    for (const w of waiters) w.resolve();
  }

  private query(extra: Record<string, string>): string {
    const q = new URLSearchParams(extra);
    if (this.options.fieldSelector !== undefined)
      q.set('fieldSelector', this.options.fieldSelector);
    return `${this.options.path}?${q.toString()}`;
  }

  /** One list, no watch (the CLI's one-shot reads): fills `items`, calls the handlers. */
  load(): Promise<void> {
    return this.list();
  }

  /**
   * Every page of one consistent list: the keys it holds, and as slim items only those that are
   * new or changed since the map has them (a resync of 100k pods keeps no second copy of them).
   */
  private async fetchAll(): Promise<{ changed: Map<string, T>; seen: Set<string>; rv: string }> {
    const changed = new Map<string, T>();
    const seen = new Set<string>();
    let cont = '';
    let rv = '';
    do {
      const page = await this.options.client.request<ListPage>(
        this.query({
          limit: String(this.options.pageSize ?? LIST_PAGE_SIZE),
          ...(cont === '' ? {} : { continue: cont }),
        }),
        {
          accept: this.options.metadataOnly ? ACCEPT_METADATA_LIST : 'application/json',
          timeoutMs: LIST_TIMEOUT_MS,
        },
      );
      this.keep(page.items ?? [], changed, seen);
      cont = page.metadata?.continue ?? '';
      rv = page.metadata?.resourceVersion ?? rv;
    } while (cont !== '');
    return { changed, seen, rv };
  }

  private keep(items: readonly KubeObject[], changed: Map<string, T>, seen: Set<string>): void {
    for (const obj of items) {
      const key = keyOf(obj);
      if (key === undefined) continue;
      const rv = obj.metadata?.resourceVersion ?? '';
      if (rv !== '' && this.items.get(key)?.rv === rv) {
        seen.add(key);
        continue;
      }
      const item = this.options.slim(obj);
      if (item === undefined) continue;
      changed.set(key, item);
      seen.add(key);
    }
  }

  private async list(): Promise<void> {
    const { changed, seen, rv } = await this.fetchAll();
    const { handlers } = this.options;
    for (const [key, old] of this.items) {
      if (!seen.has(key)) {
        this.items.delete(key);
        handlers.delete?.(key, old);
      }
    }
    for (const [key, item] of changed) {
      const old = this.items.get(key);
      this.items.set(key, item);
      if (old?.rv !== item.rv) handlers.upsert?.(key, item, old);
    }
    this.resourceVersion = rv;
    this.synced = true;
    handlers.synced?.(this.items.size);
  }

  private async watchOnce(): Promise<void> {
    const seconds = Math.round(WATCH_SECONDS * (1 + Math.random() / 4));
    let live = true;
    const handle = this.options.client.watch(
      this.query({
        watch: '1',
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: 'true',
        timeoutSeconds: String(seconds),
      }),
      {
        accept: this.options.metadataOnly ? ACCEPT_METADATA : 'application/json',
        idleTimeoutMs: WATCH_IDLE_TIMEOUT_MS,
      },
      event => {
        if (live) this.onEvent(event);
      },
    );
    this.abortWatch = () => {
      live = false;
      handle.abort();
    };
    try {
      await handle.done;
    } finally {
      this.abortWatch = undefined;
    }
  }

  private onEvent(event: WatchEvent): void {
    if (event.type === 'ERROR') {
      const st = event.object as { code?: number; reason?: string; message?: string };
      throw new ApiStatusError(st.code ?? 500, st.reason ?? '', st.message ?? 'watch error');
    }
    const obj = event.object as KubeObject;
    const rv = obj.metadata?.resourceVersion;
    if (rv !== undefined) this.resourceVersion = rv;
    const key = event.type === 'BOOKMARK' ? undefined : keyOf(obj);
    if (key === undefined) return;
    const item = event.type === 'DELETED' ? undefined : this.options.slim(obj);
    if (item === undefined) this.remove(key);
    else this.put(key, item);
  }

  private put(key: string, item: T): void {
    const old = this.items.get(key);
    this.items.set(key, item);
    this.options.handlers.upsert?.(key, item, old);
  }

  private remove(key: string): void {
    const old = this.items.get(key);
    if (old === undefined) return;
    this.items.delete(key);
    this.options.handlers.delete?.(key, old);
  }
}
