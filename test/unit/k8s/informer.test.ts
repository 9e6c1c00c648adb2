import { describe, expect, it } from 'vitest';

import { ApiStatusError, type KubeClient, type WatchEvent } from '../../../src/k8s/client.js';
import { Informer, type KubeObject, type Slim } from '../../../src/k8s/informer.js';
import { createLogger } from '../../../src/log/logger.js';

const log = createLogger({ level: 'silent' });

interface Item extends Slim {
  readonly name: string;
}

const obj = (uid: string, rv: string): KubeObject => ({
  metadata: { uid, name: `n-${uid}`, resourceVersion: rv },
});

/** A scripted API: `pages` answer successive list calls; each watch call takes the next script. */
const scripted = (
  lists: KubeObject[][],
  watches: ((emit: (e: WatchEvent) => void) => Promise<void>)[],
) => {
  const calls: string[] = [];
  let list = 0;
  let watch = 0;
  const client = {
    request: (path: string) => {
      calls.push(path);
      const items = lists[Math.min(list, lists.length - 1)] ?? [];
      const url = new URL(path, 'https://x');
      const limit = Number(url.searchParams.get('limit'));
      const offset = Number(url.searchParams.get('continue') ?? '0');
      const page = items.slice(offset, offset + limit);
      const more = offset + limit < items.length;
      if (!more) list++;
      return Promise.resolve({
        metadata: { resourceVersion: `L${list}`, continue: more ? String(offset + limit) : '' },
        items: page,
      });
    },
    watch: (path: string, _o: unknown, onEvent: (e: WatchEvent) => void) => {
      calls.push(path);
      const script = watches[watch++] ?? (() => new Promise<void>(() => undefined));
      let abort: () => void = () => undefined;
      const aborted = new Promise<void>(resolve => {
        abort = resolve;
      });
      return { done: Promise.race([script(onEvent), aborted]), abort };
    },
  } as unknown as KubeClient;
  return { client, calls };
};

const informer = (client: KubeClient, events: string[]) =>
  new Informer<Item>({
    client,
    path: '/api/v1/pods',
    metadataOnly: true,
    pageSize: 2,
    slim: o =>
      o.metadata?.name === undefined
        ? undefined
        : { rv: o.metadata.resourceVersion ?? '', name: o.metadata.name },
    log,
    delayFn: () => Promise.resolve(),
    handlers: {
      upsert: k => events.push(`upsert ${k}`),
      delete: k => events.push(`delete ${k}`),
      synced: n => events.push(`synced ${n}`),
      restart: () => events.push('restart'),
    },
  });

const settle = () => new Promise(r => setTimeout(r, 20));

describe('Informer', () => {
  it('lists page by page as metadata, then watches from the list’s resourceVersion', async () => {
    const { client, calls } = scripted([[obj('a', '1'), obj('b', '1'), obj('c', '1')]], []);
    const events: string[] = [];
    const inf = informer(client, events);
    inf.start();
    await settle();
    expect(events).toEqual(['upsert a', 'upsert b', 'upsert c', 'synced 3']);
    expect(calls[0]).toBe('/api/v1/pods?limit=2');
    expect(calls[1]).toBe('/api/v1/pods?limit=2&continue=2');
    expect(calls[2]).toMatch(
      /^\/api\/v1\/pods\?watch=1&resourceVersion=L1&allowWatchBookmarks=true&timeoutSeconds=\d+$/,
    );
    void inf.stop();
  });

  it('applies watch events and bookmarks, and watches again from the last version seen', async () => {
    const { client, calls } = scripted(
      [[obj('a', '1')]],
      [
        emit => {
          emit({ type: 'ADDED', object: obj('b', '5') });
          emit({ type: 'MODIFIED', object: obj('a', '6') });
          emit({ type: 'DELETED', object: obj('b', '7') });
          emit({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '9' } } });
          return Promise.resolve();
        },
      ],
    );
    const events: string[] = [];
    const inf = informer(client, events);
    inf.start();
    await settle();
    expect(events).toEqual(['upsert a', 'synced 1', 'upsert b', 'upsert a', 'delete b']);
    expect([...inf.items.keys()]).toEqual(['a']);
    expect(calls[2]).toContain('resourceVersion=9');
    void inf.stop();
  });

  it('lists again after 410 Gone and reports what vanished during the gap as deleted', async () => {
    const { client } = scripted(
      [
        [obj('a', '1'), obj('b', '1')],
        [obj('a', '1'), obj('c', '2')],
      ],
      [
        emit => {
          emit({ type: 'ERROR', object: { code: 410, reason: 'Expired', message: 'too old' } });
          return Promise.resolve();
        },
      ],
    );
    const events: string[] = [];
    const inf = informer(client, events);
    inf.start();
    await settle();
    // a is unchanged (same resourceVersion): not reported again.
    expect(events).toEqual([
      'upsert a',
      'upsert b',
      'synced 2',
      'delete b',
      'upsert c',
      'synced 2',
    ]);
    expect(inf.restarts).toBe(0);
    void inf.stop();
  });

  it('backs off and lists again after a failed watch', async () => {
    const { client } = scripted(
      [[obj('a', '1')]],
      [() => Promise.reject(new ApiStatusError(500, 'InternalError', 'boom'))],
    );
    const events: string[] = [];
    const inf = informer(client, events);
    inf.start();
    await settle();
    expect(events).toEqual(['upsert a', 'synced 1', 'restart', 'synced 1']);
    expect(inf.restarts).toBe(1);
    void inf.stop();
  });

  it('a list again keeps the items it already holds and makes no second copy of them', async () => {
    const { client } = scripted(
      [
        [obj('a', '1'), obj('b', '1')],
        [obj('a', '1'), obj('b', '2')],
      ],
      [],
    );
    const slimmed: string[] = [];
    const inf = new Informer<Item>({
      client,
      path: '/api/v1/pods',
      metadataOnly: true,
      pageSize: 2,
      slim: o => {
        slimmed.push(o.metadata?.uid ?? '');
        return { rv: o.metadata?.resourceVersion ?? '', name: o.metadata?.name ?? '' };
      },
      log,
      delayFn: () => Promise.resolve(),
      handlers: {},
    });
    inf.start();
    await settle();
    const a = inf.items.get('a');
    await inf.resync();
    // a is unchanged: the same object, not slimmed again; b changed.
    expect(inf.items.get('a')).toBe(a);
    expect(inf.items.get('b')?.rv).toBe('2');
    expect(slimmed).toEqual(['a', 'b', 'b']);
    void inf.stop();
  });

  it('resync() lists afresh and resolves once the list is in', async () => {
    const { client } = scripted([[obj('a', '1')], [obj('a', '2')]], []);
    const events: string[] = [];
    const inf = informer(client, events);
    inf.start();
    await settle();
    await inf.resync();
    expect(inf.items.get('a')?.rv).toBe('2');
    expect(events).toEqual(['upsert a', 'synced 1', 'upsert a', 'synced 1']);
    void inf.stop();
  });
});
