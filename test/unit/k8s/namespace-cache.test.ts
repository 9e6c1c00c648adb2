import { KubeConfig, type V1Namespace, type Watch } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { NamespaceCache } from '../../../src/k8s/namespace-cache.js';
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
    });
    await cache.start();
    expect(cache.synced).toBe(true);
    expect(cache.annotations('team-a')).toEqual({ 'podlease.io/pool': 'team' });
    expect(cache.annotations('other')).toBeUndefined();
    watch.calls[0]?.onEvent('ADDED', ns('other', { 'podlease.io/pool': 'small' }, '6'));
    expect(cache.annotations('other')).toEqual({ 'podlease.io/pool': 'small' });
    watch.calls[0]?.onEvent('DELETED', ns('team-a', undefined, '7'));
    expect(cache.annotations('team-a')).toBeUndefined();
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
    });
    await cache.start();
    expect(cache.annotations('a')).toEqual({ k: '1' });
    // A watch error that client-node 2.0 does not retry by itself (not 410, not a timeout):
    // restarted after 1 s, resuming from the resourceVersion without a new list.
    watch.calls[0]?.onDone(Object.assign(new Error('stream reset'), { statusCode: 500 }));
    await new Promise(r => setTimeout(r, 20));
    expect(delays).toEqual([1_000]);
    expect(lists).toBe(1);
    expect(watch.calls).toHaveLength(2);
    // 410 Gone: the library lists again; that list fails; restarted after 2 s with a fresh list.
    watch.calls[1]?.onDone(Object.assign(new Error('gone'), { statusCode: 410 }));
    await new Promise(r => setTimeout(r, 20));
    expect(lists).toBe(3);
    expect(delays).toEqual([1_000, 2_000]);
    expect(cache.annotations('a')).toEqual({ k: '3' });
    await cache.stop();
  });
});
