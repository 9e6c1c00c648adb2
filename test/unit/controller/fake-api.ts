/**
 * An API server in memory for the controller's unit tests: pods and StatefulSets, paged
 * metadata lists (with the finished-phase field selector), GETs, Lease objects with
 * resourceVersion conflicts, Events, and watches the test drives by changing objects.
 */
import {
  ApiStatusError,
  type KubeClient,
  type RequestOptions,
  type WatchEvent,
  type WatchHandle,
} from '../../../src/k8s/client.js';

export interface FakePod {
  uid: string;
  namespace: string;
  name: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  ownerReferences?: {
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller: boolean;
  }[];
  phase?: string;
  deleting?: boolean;
}

interface Watcher {
  path: string;
  onEvent: (e: WatchEvent) => void;
  end: () => void;
}

let rvCounter = 100;
const nextRv = (): string => String(++rvCounter);

export class FakeApi {
  readonly pods = new Map<string, FakePod & { rv: string }>();
  readonly statefulSets = new Map<
    string,
    {
      uid: string;
      namespace: string;
      name: string;
      replicas: number;
      start?: number;
      annotations?: Record<string, string>;
      rv: string;
    }
  >();
  readonly leases = new Map<
    string,
    { metadata: { name: string; namespace: string; resourceVersion: string }; spec: unknown }
  >();
  readonly events: { reason: string; message: string; pod: string }[] = [];
  readonly requests: string[] = [];
  /** Makes every request fail (an API server outage). */
  down = false;
  private readonly watchers = new Set<Watcher>();

  podObject(p: FakePod & { rv: string }): Record<string, unknown> {
    return {
      metadata: {
        uid: p.uid,
        name: p.name,
        namespace: p.namespace,
        resourceVersion: p.rv,
        annotations: p.annotations ?? {},
        labels: p.labels ?? {},
        ownerReferences: p.ownerReferences ?? [],
        ...(p.deleting === true ? { deletionTimestamp: new Date().toISOString() } : {}),
      },
      status: { phase: p.phase ?? 'Running' },
    };
  }

  private stsObject(
    s: FakeApi['statefulSets'] extends Map<string, infer V> ? V : never,
  ): Record<string, unknown> {
    return {
      metadata: { uid: s.uid, name: s.name, namespace: s.namespace, resourceVersion: s.rv },
      spec: {
        replicas: s.replicas,
        ...(s.start === undefined ? {} : { ordinals: { start: s.start } }),
        template: { metadata: { annotations: s.annotations ?? {} } },
      },
    };
  }

  private emit(
    kind: 'pods' | 'statefulsets',
    type: WatchEvent['type'],
    obj: Record<string, unknown>,
    finished: boolean,
  ): void {
    for (const w of this.watchers) {
      if (!w.path.includes(kind === 'pods' ? '/api/v1/pods' : '/statefulsets')) continue;
      const wantsFinished = w.path.includes('fieldSelector');
      if (wantsFinished && !finished) {
        continue;
      }
      w.onEvent({ type, object: obj });
    }
  }

  upsertPod(p: FakePod): void {
    const old = this.pods.get(p.uid);
    const wasFinished = old !== undefined && isFinished(old.phase);
    const stored = { ...p, rv: nextRv() };
    this.pods.set(p.uid, stored);
    const obj = this.podObject(stored);
    this.emit('pods', old === undefined ? 'ADDED' : 'MODIFIED', obj, false);
    if (isFinished(p.phase)) this.emit('pods', wasFinished ? 'MODIFIED' : 'ADDED', obj, true);
  }

  deletePod(uid: string): void {
    const p = this.pods.get(uid);
    if (p === undefined) return;
    this.pods.delete(uid);
    const obj = this.podObject({ ...p, rv: nextRv() });
    this.emit('pods', 'DELETED', obj, false);
    if (isFinished(p.phase)) this.emit('pods', 'DELETED', obj, true);
  }

  /** Deletes a pod without any watch hearing of it (a missed event). */
  deletePodSilently(uid: string): void {
    this.pods.delete(uid);
  }

  upsertStatefulSet(s: {
    uid: string;
    namespace: string;
    name: string;
    replicas: number;
    start?: number;
    annotations?: Record<string, string>;
  }): void {
    const old = this.statefulSets.get(s.uid);
    const stored = { ...s, rv: nextRv() };
    this.statefulSets.set(s.uid, stored);
    this.emit(
      'statefulsets',
      old === undefined ? 'ADDED' : 'MODIFIED',
      this.stsObject(stored),
      true,
    );
  }

  deleteStatefulSet(uid: string): void {
    const s = this.statefulSets.get(uid);
    if (s === undefined) return;
    this.statefulSets.delete(uid);
    this.emit('statefulsets', 'DELETED', this.stsObject({ ...s, rv: nextRv() }), true);
  }

  /** Ends every watch (the server closing them): informers watch again from their version. */
  endWatches(): void {
    for (const w of [...this.watchers]) w.end();
  }

  client(): KubeClient {
    const request = <T>(path: string, opts: RequestOptions): Promise<T> => {
      this.requests.push(`${opts.method ?? 'GET'} ${path}`);
      if (this.down) return Promise.reject(new ApiStatusError(503, 'ServiceUnavailable', 'down'));
      return Promise.resolve().then(() => this.answer(path, opts) as T);
    };
    const watch = (path: string, _opts: unknown, onEvent: (e: WatchEvent) => void): WatchHandle => {
      let end: () => void = () => undefined;
      const done = new Promise<void>((resolve, reject) => {
        if (this.down) {
          reject(new ApiStatusError(503, 'ServiceUnavailable', 'down'));
          return;
        }
        const w: Watcher = {
          path,
          onEvent,
          end: () => {
            this.watchers.delete(w);
            resolve();
          },
        };
        end = w.end;
        this.watchers.add(w);
      });
      return {
        done,
        abort: () => {
          end();
        },
      };
    };
    return { request, watch, close: () => undefined } as unknown as KubeClient;
  }

  private answer(path: string, opts: RequestOptions): unknown {
    const url = new URL(path, 'https://fake');
    const p = url.pathname;
    const selector = url.searchParams.get('fieldSelector');
    if (p === '/api/v1/pods') {
      const items = [...this.pods.values()].filter(x => selector === null || isFinished(x.phase));
      return {
        metadata: { resourceVersion: String(rvCounter) },
        items: items.map(x => this.podObject(x)),
      };
    }
    if (p === '/apis/apps/v1/statefulsets') {
      return {
        metadata: { resourceVersion: String(rvCounter) },
        items: [...this.statefulSets.values()].map(s => this.stsObject(s)),
      };
    }
    const nsPods = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(p);
    if (nsPods !== null) {
      return {
        metadata: {},
        items: [...this.pods.values()]
          .filter(x => x.namespace === nsPods[1])
          .map(x => this.podObject(x)),
      };
    }
    const onePod = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(p);
    if (onePod !== null) {
      const pod = [...this.pods.values()].find(
        x => x.namespace === onePod[1] && x.name === onePod[2],
      );
      if (pod === undefined) throw new ApiStatusError(404, 'NotFound', 'not found');
      return this.podObject(pod);
    }
    if (/\/events$/.test(p)) {
      const body = opts.body as {
        reason: string;
        message: string;
        involvedObject: { namespace: string; name: string };
      };
      this.events.push({
        reason: body.reason,
        message: body.message,
        pod: `${body.involvedObject.namespace}/${body.involvedObject.name}`,
      });
      return {};
    }
    return this.answerLease(p, opts);
  }

  private answerLease(p: string, opts: RequestOptions): unknown {
    const m = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases(?:\/([^/]+))?$/.exec(
      p,
    );
    if (m === null) throw new ApiStatusError(404, 'NotFound', `no route ${p}`);
    const key = `${m[1]}/${m[2] ?? ''}`;
    if (opts.method === 'POST') {
      const body = opts.body as { metadata: { name: string; namespace: string }; spec: unknown };
      const k = `${m[1]}/${body.metadata.name}`;
      if (this.leases.has(k)) throw new ApiStatusError(409, 'AlreadyExists', 'exists');
      const stored = { metadata: { ...body.metadata, resourceVersion: nextRv() }, spec: body.spec };
      this.leases.set(k, stored);
      return stored;
    }
    if (opts.method === 'PUT') {
      const body = opts.body as {
        metadata: { name: string; namespace: string; resourceVersion: string };
        spec: unknown;
      };
      const cur = this.leases.get(key);
      if (cur?.metadata.resourceVersion !== body.metadata.resourceVersion)
        throw new ApiStatusError(409, 'Conflict', 'conflict');
      const stored = { metadata: { ...body.metadata, resourceVersion: nextRv() }, spec: body.spec };
      this.leases.set(key, stored);
      return stored;
    }
    const cur = this.leases.get(key);
    if (cur === undefined) throw new ApiStatusError(404, 'NotFound', 'not found');
    return structuredClone(cur);
  }
}

const isFinished = (phase: string | undefined): boolean =>
  phase === 'Succeeded' || phase === 'Failed';
