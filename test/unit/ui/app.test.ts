import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/log/logger.js';
import { newLeaseId } from '../../../src/pool/lease-id.js';
import { MemoryLeaseStore } from '../../../src/pool/memory-store.js';
import type { PoolSet } from '../../../src/pool/pools-file.js';
import { toReportJson } from '../../../src/pool/report.js';
import type { LeaseStore } from '../../../src/pool/store.js';
import { createUiApp } from '../../../src/ui/app.js';
import { testPool } from '../../helpers/pools.js';

const ready = testPool({ cidr: '10.70.0.0/28', gateway: '10.70.0.1' });
const empty = testPool({ cidr: '10.70.1.0/28' });
const pools: PoolSet = { pools: new Map([ready, empty].map(p => [p.name, p])), defaults: {} };

const listen = (store: LeaseStore): Promise<{ server: Server; base: string }> => {
  const app = createUiApp({
    store,
    pools,
    reuseCooldownMs: 60_000,
    log: createLogger({ level: 'silent' }),
    cacheMs: 0,
  });
  const server = createServer(app);
  return new Promise(resolve => {
    server.listen(0, '127.0.0.1', () => {
      resolve({ server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
    });
  });
};

describe('pool map app', () => {
  const store = new MemoryLeaseStore();
  let server: Server;
  let base: string;
  let leaseId = '';

  beforeAll(async () => {
    await store.ensurePool(ready, { initialize: true });
    const a = await store.allocate({
      pool: ready,
      leaseId: newLeaseId(),
      pod: { namespace: 'shop', name: 'cart-0' },
      ttlMs: 60_000,
    });
    leaseId = a.lease.id;
    await store.saveReport(ready, toReportJson(Date.now(), []));
    ({ server, base } = await listen(store));
  });

  afterAll(
    () =>
      new Promise<void>(resolve =>
        server.close(() => {
          resolve();
        }),
      ),
  );

  it('serves the index, a pool page, the map JSON (gzip, ETag) and cell details', async () => {
    const index = await fetch(`${base}/`);
    expect(index.headers.get('content-security-policy')).toContain("script-src 'self'");
    const indexHtml = await index.text();
    expect(indexHtml).toContain(ready.name);
    expect(indexHtml).toContain(`pool &quot;${empty.name}&quot; is not ready`);

    const page = await (await fetch(`${base}/pools/${ready.name}?q=cart`)).text();
    expect(page).toContain('<dt>size</dt><dd>13</dd>');
    expect(page).toContain('No conflicts, no leaks');
    expect(page).toMatch(/<td class="ip">10\.70\.0\.2<\/td><td>pending<\/td>/);

    const res = await fetch(`${base}/api/pools/${ready.name}/map`);
    expect(res.status).toBe(200);
    const etag = res.headers.get('etag') ?? '';
    const map = (await res.json()) as { cells: string; holders?: unknown; summaryHtml: string };
    expect(map.cells).toBe('ngp............n');
    expect(map.holders).toBeUndefined();
    expect(map.summaryHtml).toContain('Top namespaces');
    const again = await fetch(`${base}/api/pools/${ready.name}/map`, {
      headers: { 'if-none-match': etag },
    });
    expect(again.status).toBe(304);

    const raw = await new Promise<Buffer>((resolve, reject) => {
      const url = `${base}/api/pools/${ready.name}/map`;
      get(url, { headers: { 'accept-encoding': 'gzip' } }, r => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => {
          resolve(Buffer.concat(chunks));
        });
      }).on('error', reject);
    });
    expect((JSON.parse(gunzipSync(raw).toString()) as { cells: string }).cells).toBe(map.cells);

    const cell = (await (await fetch(`${base}/api/pools/${ready.name}/cells/2`)).json()) as {
      holder: unknown[];
    };
    expect(cell.holder.slice(0, 5)).toEqual([2, 'p', 'shop', 'cart-0', leaseId]);
    const search = (await (
      await fetch(`${base}/api/pools/${ready.name}/search?q=10.70.0.1`)
    ).json()) as {
      hits: { state: string }[];
      html: string;
    };
    expect(search.hits[0]?.state).toBe('not allocatable: it is the pool gateway');
    expect(search.html).toContain('<table class="results">');
  });

  it('says what is wrong: unknown pool, a pool without state, writes, unknown paths', async () => {
    const unknown = await fetch(`${base}/pools/nope`);
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toContain(`known pools: ${ready.name}, ${empty.name}`);
    expect((await fetch(`${base}/api/pools/nope/map`)).status).toBe(404);
    expect(await (await fetch(`${base}/pools/${empty.name}`)).text()).toContain('is not ready');
    expect((await fetch(`${base}/api/pools/${empty.name}/map`)).status).toBe(503);
    expect((await fetch(`${base}/api/pools/${empty.name}/search?q=x`)).status).toBe(503);
    expect((await fetch(`${base}/api/pools/${ready.name}/cells/x`)).status).toBe(400);
    const post = await fetch(`${base}/pools/${ready.name}`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect((await fetch(`${base}/elsewhere`)).status).toBe(404);
    expect((await fetch(`${base}/assets/pool-map.js`)).headers.get('content-type')).toMatch(
      /javascript/,
    );
    expect((await fetch(`${base}/favicon.ico`)).status).toBe(204);
  });

  it('answers 503 when the store does not', async () => {
    const broken = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'snapshot' || prop === 'stats') {
          return () => Promise.reject(new Error('connection refused'));
        }
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });
    const other = await listen(broken);
    try {
      const page = await fetch(`${other.base}/pools/${ready.name}`);
      expect(page.status).toBe(503);
      expect(await page.text()).toContain('the store did not answer: connection refused');
      expect((await fetch(`${other.base}/api/pools/${ready.name}/map`)).status).toBe(503);
      expect(await (await fetch(`${other.base}/`)).text()).toContain('connection refused');
    } finally {
      await new Promise<void>(resolve =>
        other.server.close(() => {
          resolve();
        }),
      );
    }
  });
});
