/**
 * The pool map's express app (`podlease serve --ui-listen`): read-only pages per pool, the map
 * JSON they draw from, cell details, search, and two static assets. Each pool's data is one
 * store snapshot plus its reconcile report, shared by every request (Views), so a page, its
 * script's polling and any number of viewers cost the store two reads a second at most per pool.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import express, { type Express, type Request, type Response } from 'express';
import type { Logger } from '../log/logger.js';
import { PoolRecoveringError } from '../pool/errors.js';
import type { Pool, PoolSet } from '../pool/pools-file.js';
import { parseReport, type PoolReport } from '../pool/report.js';
import type { LeaseStore, PoolSnapshot } from '../pool/store.js';
import { buildPoolMap, type AggregateRow, type HolderRow, type PoolMap } from './map.js';
import {
  renderIndexPage,
  renderPoolPage,
  renderProblemPage,
  renderResults,
  renderSummary,
  type IndexEntry,
  type PageOptions,
} from './page.js';
import { searchPool } from './search.js';

export interface UiDeps {
  readonly store: LeaseStore;
  readonly pools: PoolSet;
  /** `--reuse-cooldown`: what counts as cooling down. */
  readonly reuseCooldownMs: number;
  readonly log: Logger;
  /** How long one snapshot serves every request of its pool. */
  readonly cacheMs?: number | undefined;
  /** Up to this age a snapshot is still answered while a newer one is read. */
  readonly staleMs?: number | undefined;
  /** How often the page's script asks again. */
  readonly pollMs?: number | undefined;
}

export const UI_CACHE_MS = 1_000;
export const UI_STALE_MS = 10_000;
/** How long a stale answer waits before the read that replaces it starts. */
const REFRESH_DELAY_MS = 300;
export const UI_POLL_MS = 5_000;

const asset = (file: string): Buffer => readFileSync(new URL(`./assets/${file}`, import.meta.url));

/** One pool's data: what the store said, and what was made of it (lazily). */
interface View {
  readonly at: number;
  readonly pool: Pool;
  readonly snapshot?: PoolSnapshot | undefined;
  readonly map?: PoolMap | undefined;
  readonly report?: PoolReport | undefined;
  /** The pool has no state (503 for the JSON, a notice on the page). */
  readonly problem?: string | undefined;
  body?: { json: Buffer; gzip: Buffer; etag: string };
  /** Cell → its holder row, aggregated counts: what hover asks for. */
  cells?: Map<number, CellDetail>;
}

/** What hovering a cell shows beyond its colour: the lease, or an aggregated cell's counts. */
interface CellDetail {
  holder: HolderRow | null;
  alloc: number | null;
  aggregate: AggregateRow | null;
}

const detailOf = (view: View, map: PoolMap, cell: number): CellDetail => {
  if (view.cells === undefined) {
    const cells = new Map<number, CellDetail>();
    for (const h of map.holders) cells.set(h[0], { holder: h, alloc: null, aggregate: null });
    for (const a of map.aggregate) cells.set(a[0], { holder: null, alloc: null, aggregate: a });
    view.cells = cells;
  }
  const d = view.cells.get(cell) ?? { holder: null, alloc: null, aggregate: null };
  return map.unit > 1 ? { ...d, alloc: map.alloc[cell] ?? 0 } : d;
};

const errText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * Each pool's latest view. Fresher than `cacheMs`: shared as it is. Older, up to `staleMs`:
 * answered at once, and one read of the store replaces it a moment later (so a viewer never
 * waits for the store twice in a row). Older still, or none: the request waits for the read.
 */
class Views {
  readonly #deps: UiDeps;
  readonly #cacheMs: number;
  readonly #staleMs: number;
  readonly #latest = new Map<string, View>();
  readonly #loading = new Map<string, Promise<View>>();
  readonly #scheduled = new Set<string>();

  constructor(deps: UiDeps) {
    this.#deps = deps;
    this.#cacheMs = deps.cacheMs ?? UI_CACHE_MS;
    this.#staleMs = Math.max(this.#cacheMs, deps.staleMs ?? UI_STALE_MS);
  }

  get(pool: Pool): Promise<View> {
    const latest = this.#latest.get(pool.name);
    const age = latest === undefined ? Infinity : Date.now() - latest.at;
    if (latest !== undefined && age < this.#cacheMs) return Promise.resolve(latest);
    if (latest !== undefined && age < this.#staleMs) {
      this.#refreshSoon(pool);
      return Promise.resolve(latest);
    }
    return this.#refresh(pool);
  }

  /**
   * A read a moment later: parsing a big pool's snapshot keeps the event loop busy, and the
   * requests of the page being loaded (its map JSON right after the HTML) come first.
   */
  #refreshSoon(pool: Pool): void {
    if (this.#loading.has(pool.name) || this.#scheduled.has(pool.name)) return;
    this.#scheduled.add(pool.name);
    setTimeout(() => {
      this.#scheduled.delete(pool.name);
      this.#refresh(pool).catch(() => undefined); // the next request tries again
    }, REFRESH_DELAY_MS).unref();
  }

  #refresh(pool: Pool): Promise<View> {
    const inFlight = this.#loading.get(pool.name);
    if (inFlight !== undefined) return inFlight;
    const next = this.#load(pool)
      .then(view => {
        this.#latest.set(pool.name, view);
        return view;
      })
      .finally(() => this.#loading.delete(pool.name));
    this.#loading.set(pool.name, next);
    return next;
  }

  async #load(pool: Pool): Promise<View> {
    const { store, reuseCooldownMs } = this.#deps;
    const now = Date.now();
    const reportText = store.report(pool);
    reportText.catch(() => undefined);
    let snapshot: PoolSnapshot;
    try {
      snapshot = await store.snapshot(pool, { now, reuseCooldownMs });
    } catch (err) {
      if (!(err instanceof PoolRecoveringError)) throw err;
      return { at: now, pool, problem: err.message };
    }
    const report = parseReport(await reportText);
    return { at: now, pool, snapshot, report, map: buildPoolMap(pool, snapshot, report) };
  }
}

/** The map JSON of a view, gzipped once for every viewer; its ETag leaves the time out. */
const bodyOf = (view: View): { json: Buffer; gzip: Buffer; etag: string } => {
  if (view.body !== undefined) return view.body;
  const map = view.map;
  const summaryHtml = map === undefined ? '' : renderSummary(map, view.report);
  // Per-cell details stay on the server (`/cells/<n>`): the map is one code per cell.
  const lean = { ...map, holders: undefined, alloc: undefined, aggregate: undefined };
  const stable = JSON.stringify({ ...lean, at: 0, summaryHtml });
  const etag = `"${createHash('sha1').update(stable).digest('base64url')}"`;
  const json = Buffer.from(JSON.stringify({ ...lean, summaryHtml }));
  view.body = { json, gzip: gzipSync(json, { level: 1 }), etag };
  return view.body;
};

const securityHeaders = (_req: Request, res: Response, next: () => void): void => {
  res.setHeader(
    'content-security-policy',
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  );
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('referrer-policy', 'no-referrer');
  res.setHeader('cache-control', 'no-store');
  next();
};

const sendAsset = (type: string, body: Buffer) => (_req: Request, res: Response) => {
  res.setHeader('cache-control', 'no-cache');
  res.type(type).send(body);
};

/** The read-only pool map app. */
export const createUiApp = (deps: UiDeps): Express => {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const views = new Views(deps);
  const pollMs = deps.pollMs ?? UI_POLL_MS;
  const page: PageOptions = { title: 'pools', pools: deps.pools, storeKind: deps.store.kind };
  const script = asset('pool-map.js');
  const style = asset('pool-map.css');

  const poolOf = (req: Request, res: Response, html: boolean): Pool | undefined => {
    const raw = req.params.name;
    const name = typeof raw === 'string' ? raw : '';
    const pool = deps.pools.pools.get(name);
    if (pool !== undefined) return pool;
    const known = [...deps.pools.pools.keys()].join(', ');
    const message = `unknown pool "${name}"; known pools: ${known}`;
    if (html)
      res
        .status(404)
        .type('html')
        .send(renderProblemPage(page, 'Unknown pool', message));
    else res.status(404).json({ error: 'NotFound', message });
    return undefined;
  };

  const unavailable = (res: Response, html: boolean, err: unknown): void => {
    deps.log.warn({ err }, 'pool map: the store did not answer');
    const message = `the store did not answer: ${errText(err)}`;
    if (html)
      res
        .status(503)
        .type('html')
        .send(renderProblemPage(page, 'Store unavailable', message));
    else res.status(503).json({ error: 'StoreUnavailable', message });
  };

  app.use(securityHeaders);
  app.use((req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD') {
      next();
      return;
    }
    res.setHeader('allow', 'GET, HEAD');
    res.status(405).json({ error: 'MethodNotAllowed', message: 'the pool map is read-only' });
  });
  app.get('/assets/pool-map.js', sendAsset('text/javascript', script));
  app.get('/assets/pool-map.css', sendAsset('text/css', style));
  app.get('/favicon.ico', (_req, res) => {
    res.status(204).end();
  });

  app.get('/', async (_req, res) => {
    const entries = await Promise.all(
      [...deps.pools.pools.values()].map(async (pool): Promise<IndexEntry> => {
        try {
          const [stats, report] = await Promise.all([
            deps.store.stats(pool, { reuseCooldownMs: deps.reuseCooldownMs }),
            deps.store.report(pool),
          ]);
          const ready = await deps.store.epoch(pool);
          return {
            pool,
            stats,
            report: parseReport(report),
            problem: ready === undefined ? 'no state in the store yet' : undefined,
          };
        } catch (err) {
          return { pool, stats: undefined, report: undefined, problem: errText(err) };
        }
      }),
    );
    res.type('html').send(renderIndexPage(page, entries));
  });

  app.get('/pools/:name', async (req, res) => {
    const pool = poolOf(req, res, true);
    if (pool === undefined) return;
    try {
      const view = await views.get(pool);
      const q = typeof req.query.q === 'string' ? req.query.q : undefined;
      const search =
        q === undefined || view.snapshot === undefined || view.map === undefined
          ? undefined
          : searchPool(pool, view.snapshot, q);
      res.type('html').send(
        renderPoolPage(page, {
          pool,
          map: view.map,
          report: view.report,
          problem: view.problem,
          search,
          pollMs,
        }),
      );
    } catch (err) {
      unavailable(res, true, err);
    }
  });

  app.get('/api/pools/:name/map', async (req, res) => {
    const pool = poolOf(req, res, false);
    if (pool === undefined) return;
    try {
      const view = await views.get(pool);
      if (view.map === undefined) {
        res.status(503).json({ error: 'PoolNotReady', message: view.problem ?? '' });
        return;
      }
      const body = bodyOf(view);
      res.setHeader('etag', body.etag);
      res.setHeader('vary', 'accept-encoding');
      if (req.headers['if-none-match'] === body.etag) {
        res.status(304).end();
        return;
      }
      res.type('json');
      if (/\bgzip\b/.test(req.headers['accept-encoding'] ?? '')) {
        res.setHeader('content-encoding', 'gzip');
        res.send(body.gzip);
      } else {
        res.send(body.json);
      }
    } catch (err) {
      unavailable(res, false, err);
    }
  });

  app.get('/api/pools/:name/cells/:cell', async (req, res) => {
    const pool = poolOf(req, res, false);
    if (pool === undefined) return;
    try {
      const view = await views.get(pool);
      const cell = Number(req.params.cell);
      if (view.map === undefined || !Number.isInteger(cell) || cell < 0) {
        res.status(view.map === undefined ? 503 : 400).json({ error: 'BadCell', message: '' });
        return;
      }
      res.json({ cell, at: view.map.at, ...detailOf(view, view.map, cell) });
    } catch (err) {
      unavailable(res, false, err);
    }
  });

  app.get('/api/pools/:name/search', async (req, res) => {
    const pool = poolOf(req, res, false);
    if (pool === undefined) return;
    try {
      const view = await views.get(pool);
      if (view.snapshot === undefined || view.map === undefined) {
        res.status(503).json({ error: 'PoolNotReady', message: view.problem ?? '' });
        return;
      }
      const q = typeof req.query.q === 'string' ? req.query.q : '';
      const result = searchPool(pool, view.snapshot, q);
      res.json({ ...result, html: renderResults(result) });
    } catch (err) {
      unavailable(res, false, err);
    }
  });

  app.use((_req, res) => {
    res
      .status(404)
      .type('html')
      .send(renderProblemPage(page, 'Not found', 'the pool map serves / and /pools/<name>'));
  });
  return app;
};
