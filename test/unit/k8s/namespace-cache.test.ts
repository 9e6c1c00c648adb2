import { KubeConfig, type V1Namespace, type Watch } from '@kubernetes/client-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NamespaceCache, type NamespaceCacheOptions } from '../../../src/k8s/namespace-cache.js';
import { silentLogger } from '../../../src/log/logger.js';

type OnEvent = (phase: string, obj: unknown) => void;
type OnDone = (err: unknown) => void;

/** client-node's cache_test fake: stores the callbacks so the test drives the watch. */
class FakeWatch {
  calls: { onEvent: OnEvent; onDone: OnDone }[] = [];
  watch(
    _path: string,
    _query: unknown,
    onEvent: OnEvent,
    onDone: OnDone,
  ): Promise<AbortController> {
    this.calls.push({ onEvent, onDone });
    return Promise.resolve(new AbortController());
  }
}

const ns = (name: string, annotations?: Record<string, string>, rv = '1'): V1Namespace => {
  const wire: unknown = JSON.parse(
    JSON.stringify({ metadata: { name, annotations, resourceVersion: rv } }),
  );
  return wire as V1Namespace;
};

const kubeConfig = (): KubeConfig => {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
};

/** client-node's ApiException for a 404 carries `code: 404`. */
const notFound = (name: string): Promise<V1Namespace> =>
  Promise.reject(Object.assign(new Error(`namespaces "${name}" not found`), { code: 404 }));

describe('NamespaceCache', () => {
  it('answers annotations from the list and follows watch events', async () => {
    const watch = new FakeWatch();
    const cache = new NamespaceCache({
      kubeConfig: kubeConfig(),
      log: silentLogger(),
      watch: watch as unknown as Watch,
      listFn: () =>
        Promise.resolve({
          items: [ns('team-a', { 'podlease.io/pool': 'team' })],
          metadata: { resourceVersion: '5' },
        }),
      delayFn: () => Promise.resolve(),
      readFn: notFound,
    });
    await cache.start();
    expect(cache.synced).toBe(true);
    expect(await cache.annotations('team-a')).toEqual({ 'podlease.io/pool': 'team' });
    expect(await cache.annotations('other')).toBeUndefined();
    watch.calls[0]?.onEvent('ADDED', ns('other', { 'podlease.io/pool': 'small' }, '6'));
    expect(await cache.annotations('other')).toEqual({ 'podlease.io/pool': 'small' });
    watch.calls[0]?.onEvent('DELETED', ns('team-a', undefined, '7'));
    expect(await cache.annotations('team-a')).toBeUndefined();
    await cache.stop();
  });

  it('restarts with backoff after a watch error and after a failed list', async () => {
    const watch = new FakeWatch();
    const delays: number[] = [];
    let lists = 0;
    const cache = new NamespaceCache({
      kubeConfig: kubeConfig(),
      log: silentLogger(),
      watch: watch as unknown as Watch,
      listFn: () => {
        lists++;
        if (lists === 2) return Promise.reject(new Error('connection refused'));
        return Promise.resolve({
          items: [ns('a', { k: String(lists) }, String(lists))],
          metadata: { resourceVersion: String(lists) },
        });
      },
      delayFn: ms => {
        delays.push(ms);
        return Promise.resolve();
      },
      readFn: notFound,
    });
    await cache.start();
    expect(await cache.annotations('a')).toEqual({ k: '1' });
    // A watch error that client-node 2.0 does not retry by itself (not 410, not a timeout):
    // restarted after 1 s, resuming from the resourceVersion without a new list.
    watch.calls[0]?.onDone(Object.assign(new Error('stream reset'), { statusCode: 500 }));
    await expect.poll(() => watch.calls.length).toBe(2);
    expect(delays).toEqual([1_000]);
    expect(lists).toBe(1);
    expect(watch.calls).toHaveLength(2);
    // 410 Gone: the library lists again; that list fails; restarted after 2 s with a fresh list.
    watch.calls[1]?.onDone(Object.assign(new Error('gone'), { statusCode: 410 }));
    await expect.poll(() => lists).toBe(3);
    expect(delays).toEqual([1_000, 2_000]);
    expect(await cache.annotations('a')).toEqual({ k: '3' });
    await cache.stop();
  });
});

describe('NamespaceCache: readiness and live lookups', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const cacheWith = (
    options: Partial<NamespaceCacheOptions>,
  ): { cache: NamespaceCache; watch: FakeWatch } => {
    const watch = new FakeWatch();
    const cache = new NamespaceCache({
      kubeConfig: kubeConfig(),
      log: silentLogger(),
      watch: watch as unknown as Watch,
      listFn: () => Promise.resolve({ items: [], metadata: { resourceVersion: '1' } }),
      delayFn: () => Promise.resolve(),
      readFn: notFound,
      ...options,
    });
    return { cache, watch };
  };

  it('is not ready until the first list has filled it', async () => {
    let answer: (list: {
      items: V1Namespace[];
      metadata: { resourceVersion: string };
    }) => void = () => undefined;
    const { cache } = cacheWith({
      listFn: () =>
        new Promise(resolve => {
          answer = resolve;
        }),
    });
    expect(cache.ready()).toBe(false);
    const started = cache.start();
    expect(cache.ready()).toBe(false);
    answer({
      items: [ns('team-a', { 'podlease.io/pool': 'team' })],
      metadata: { resourceVersion: '3' },
    });
    await started;
    expect(cache.ready()).toBe(true);
    await cache.stop();
  });

  it('reads a namespace it does not hold live, once for concurrent misses', async () => {
    const reads: string[] = [];
    const { cache } = cacheWith({
      readFn: name => {
        reads.push(name);
        return Promise.resolve(ns(name, { 'podlease.io/pool': 'team' }));
      },
    });
    // Not started (not synced): a namespace annotated with a pool is not answered "none".
    const answers = await Promise.all([cache.annotations('team-b'), cache.annotations('team-b')]);
    expect(answers).toEqual([{ 'podlease.io/pool': 'team' }, { 'podlease.io/pool': 'team' }]);
    expect(reads).toEqual(['team-b']);
    expect(await cache.annotations('team-b')).toEqual({ 'podlease.io/pool': 'team' });
    expect(reads).toEqual(['team-b', 'team-b']);
  });

  it('answers no annotations for a namespace that does not exist (404)', async () => {
    const { cache } = cacheWith({ readFn: notFound });
    expect(await cache.annotations('gone')).toBeUndefined();
  });

  it('rejects when the live lookup fails or does not answer within the timeout', async () => {
    const failing = cacheWith({ readFn: () => Promise.reject(new Error('connect ECONNREFUSED')) });
    await expect(failing.cache.annotations('team-c')).rejects.toThrow('connect ECONNREFUSED');
    vi.useFakeTimers();
    const silent = cacheWith({
      readFn: () => new Promise<V1Namespace>(() => undefined),
      lookupTimeoutMs: 800,
    });
    const lookup = silent.cache.annotations('team-c');
    const settled = expect(lookup).rejects.toThrow(
      'no answer to GET namespace team-c within 800 ms',
    );
    await vi.advanceTimersByTimeAsync(800);
    await settled;
  });
});
