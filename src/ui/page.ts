/**
 * The pool map's HTML, rendered on the server: every number (the usage bar, top namespaces, the
 * last reconcile's findings, search results) reads with JavaScript off. The grid itself is drawn
 * by /assets/pool-map.js from the map JSON, and the same script keeps the summary live.
 */
import type { Pool, PoolSet } from '../pool/pools-file.js';
import type { PoolReport } from '../pool/report.js';
import type { PoolStats } from '../pool/store.js';
import { formatDuration } from '../text/duration.js';
import {
  AGGREGATE_LEGEND,
  AGGREGATE_PALETTE,
  CELL,
  LEGEND,
  PALETTE,
  STATE_WORDS,
  type PoolMap,
} from './map.js';
import type { SearchResult } from './search.js';

export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, c =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;',
  );

const n = (v: number): string => v.toLocaleString('en-US');

const utc = (ms: number): string =>
  `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;

const poolHref = (name: string): string => `/pools/${encodeURIComponent(name)}`;

export interface PageOptions {
  readonly title: string;
  readonly pools: PoolSet;
  readonly current?: string | undefined;
  readonly storeKind: string;
  /** The map JSON the page's script fetches first, fetched by the browser in parallel. */
  readonly preload?: string | undefined;
}

const layout = (o: PageOptions, body: string): string => {
  const nav = [...o.pools.pools.keys()]
    .map(
      name =>
        `<a href="${poolHref(name)}"${name === o.current ? ' aria-current="page"' : ''}>${escapeHtml(name)}</a>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(o.title)} · podlease</title>
<link rel="stylesheet" href="/assets/pool-map.css">
${o.preload === undefined ? '' : `<link rel="preload" href="${o.preload}" as="fetch" crossorigin="anonymous">`}
</head>
<body>
<header class="top">
  <a class="brand" href="/">podlease <span>pool map</span></a>
  <nav>${nav}</nav>
  <span class="store">store: ${escapeHtml(o.storeKind)} · read-only</span>
</header>
<main>
${body}
</main>
</body>
</html>
`;
};

/** Parts of the usage bar, in legend colours. */
const barParts = (s: PoolStats): { code: string; label: string; count: number }[] => {
  const stickyNoPod = Math.max(0, s.leased - s.pending - s.bound);
  return [
    { code: CELL.bound, label: 'bound', count: s.bound },
    { code: CELL.pending, label: 'pending', count: s.pending },
    { code: CELL.reserved, label: 'sticky, no pod', count: stickyNoPod },
    { code: CELL.cooling, label: 'cooling down', count: s.cooling },
    { code: CELL.free, label: 'free', count: Math.max(0, s.free) },
  ];
};

export const renderBar = (s: PoolStats): string => {
  const parts = barParts(s)
    .filter(p => p.count > 0)
    .map(p => {
      const pct = s.size > 0 ? (p.count / s.size) * 100 : 0;
      const title = `${p.label}: ${n(p.count)} (${pct.toFixed(1)} %)`;
      return `<span class="part" style="width:${pct.toFixed(3)}%;background:${PALETTE[p.code] ?? ''}" title="${escapeHtml(title)}"></span>`;
    })
    .join('');
  return `<div class="bar" role="img" aria-label="${escapeHtml(
    `${n(s.leased)} of ${n(s.size)} leased, ${n(s.free)} free`,
  )}">${parts}</div>`;
};

export const renderNumbers = (s: PoolStats): string => {
  const pct = s.size > 0 ? ((s.leased / s.size) * 100).toFixed(1) : '0.0';
  const cells: [string, number, string, string | undefined][] = [
    ['size', s.size, 'allocatable addresses', undefined],
    ['leased', s.leased, `held by a lease or a reservation (${pct} %)`, undefined],
    ['bound', s.bound, 'leases bound to a pod', CELL.bound],
    ['pending', s.pending, 'leases waiting for their pod', CELL.pending],
    ['reserved', s.reserved, 'sticky reservations, with or without a pod', CELL.reserved],
    ['cooling', s.cooling, 'released, resting before reuse', CELL.cooling],
    ['free', s.free, 'may be leased now', CELL.free],
  ];
  return `<dl class="numbers">${cells
    .map(([k, v, hint, code]) => {
      const dot = code === undefined ? '' : `<i style="background:${PALETTE[code] ?? ''}"></i>`;
      return `<div data-stat="${k}" title="${escapeHtml(hint)}"><dt>${dot}${k}</dt><dd>${n(v)}</dd></div>`;
    })
    .join('')}</dl>`;
};

const renderNamespaces = (map: PoolMap): string => {
  if (map.namespaces.length === 0) {
    return '<section class="card"><h2>Top namespaces</h2><p class="muted">No address is held.</p></section>';
  }
  const max = map.namespaces[0]?.held ?? 1;
  const rows = map.namespaces
    .map(
      u => `<tr><td><a href="?q=${encodeURIComponent(`${u.namespace}/`)}">${escapeHtml(u.namespace)}</a></td>
<td class="num">${n(u.held)}</td><td class="num">${n(u.bound)}</td><td class="num">${n(u.pending)}</td><td class="num">${n(u.reserved)}</td>
<td class="spark"><span style="width:${((u.held / Math.max(1, max)) * 100).toFixed(1)}%"></span></td></tr>`,
    )
    .join('\n');
  const more =
    map.namespaceCount > map.namespaces.length
      ? `<p class="muted">${n(map.namespaceCount - map.namespaces.length)} more namespaces hold addresses.</p>`
      : '';
  return `<section class="card"><h2>Top namespaces</h2>
<table class="namespaces"><thead><tr><th>namespace</th><th class="num">held</th><th class="num">bound</th><th class="num">pending</th><th class="num">sticky</th><th></th></tr></thead>
<tbody>${rows}</tbody></table>${more}</section>`;
};

const PROBLEM_KINDS = new Set(['duplicate-address', 'uid-conflict']);

const renderFindings = (report: PoolReport | undefined): string => {
  if (report === undefined) {
    return `<section class="card findings"><h2>Last reconcile</h2>
<p class="muted">No reconcile report yet. The controller (on the leader replica) keeps one here after every reconcile (<code>--reconcile-interval</code>).</p></section>`;
  }
  const counts = Object.entries(report.counts)
    .sort((a, b) => b[1] - a[1])
    .map(
      ([k, c]) =>
        `<span class="kind${PROBLEM_KINDS.has(k) ? ' bad' : ''}">${escapeHtml(k)} ${n(c)}</span>`,
    )
    .join(' ');
  const head = `<h2>Last reconcile <span class="muted">${utc(report.at)}</span></h2>`;
  if (report.total === 0) {
    return `<section class="card findings">${head}<p class="ok">No conflicts, no leaks: the store agrees with the cluster.</p></section>`;
  }
  const rows = report.findings
    .map(f => {
      const pod = f.pod === undefined ? '' : `${f.pod.namespace}/${f.pod.name}`;
      const ip =
        f.ip === undefined
          ? ''
          : `<a href="?q=${encodeURIComponent(f.ip)}">${escapeHtml(f.ip)}</a>`;
      return `<tr class="${PROBLEM_KINDS.has(f.kind) ? 'bad' : ''}"><td>${escapeHtml(f.kind)}</td><td>${ip}</td><td>${escapeHtml(pod)}</td><td>${escapeHtml(f.message)}</td></tr>`;
    })
    .join('\n');
  const shown =
    report.findings.length < report.total
      ? `<p class="muted">Showing ${n(report.findings.length)} of ${n(report.total)} findings, the worst first.</p>`
      : '';
  return `<section class="card findings">${head}<p>${n(report.total)} findings: ${counts}</p>
<table><thead><tr><th>kind</th><th>address</th><th>pod</th><th>what</th></tr></thead><tbody>${rows}</tbody></table>${shown}</section>`;
};

/** The live part of a pool's page: bar, numbers, top namespaces, findings. */
export const renderSummary = (map: PoolMap, report: PoolReport | undefined): string => {
  const notReady = map.ready
    ? ''
    : '<p class="warn">This pool has no epoch: allocation answers 503 until the controller rebuilds it (or <code>podlease pools init</code>).</p>';
  const outside =
    map.outside > 0
      ? `<p class="warn">${n(map.outside)} held addresses of the store are outside this replica's pools file (replicas run different pools files).</p>`
      : '';
  return `<section class="card usage">${notReady}${outside}${renderBar(map.stats)}${renderNumbers(map.stats)}</section>
<div class="columns">${renderNamespaces(map)}${renderFindings(report)}</div>`;
};

const renderLegend = (map: PoolMap): string => {
  if (map.unit > 1) {
    const items = AGGREGATE_LEGEND.map(
      l => `<li><i style="background:${l.colour}"></i>${escapeHtml(l.label)}</li>`,
    ).join('');
    return `<ul class="legend" aria-label="legend"><li class="unit">one cell = ${n(map.unit)} addresses${
      map.family === 4 && map.unit === 256 ? ' (a /24)' : ''
    }</li>${items}<li><i class="flag"></i>finding of the last reconcile</li></ul>`;
  }
  const items = LEGEND.map(
    l =>
      `<li title="${escapeHtml(l.hint)}"><i style="background:${l.colour}"></i>${escapeHtml(l.label)}</li>`,
  ).join('');
  return `<ul class="legend" aria-label="legend"><li class="unit">one cell = one address</li>${items}<li><i class="flag"></i>finding of the last reconcile</li></ul>`;
};

const renderSearch = (pool: Pool, result: SearchResult | undefined): string => {
  const q = result?.query ?? '';
  const form = `<form class="search" id="search" action="${poolHref(pool.name)}" method="get" role="search">
<input type="search" name="q" value="${escapeHtml(q)}" placeholder="address, pod, namespace, lease id or sticky key" size="44" aria-label="search">
<button type="submit">Find</button></form>`;
  return form;
};

export const renderResults = (r: SearchResult): string => {
  if (r.hits.length === 0) {
    return `<p class="muted">Nothing matches <q>${escapeHtml(r.query)}</q>.</p>`;
  }
  const rows = r.hits
    .map(
      h => `<tr data-cell="${h.cell ?? ''}"><td class="ip">${escapeHtml(h.ip)}</td><td>${escapeHtml(h.state)}</td>
<td>${escapeHtml(h.namespace ?? '')}</td><td>${escapeHtml(h.pod ?? '')}</td><td class="id">${escapeHtml(h.leaseId ?? '')}</td><td>${escapeHtml(h.key ?? '')}</td></tr>`,
    )
    .join('\n');
  const more =
    r.total > r.hits.length
      ? `<p class="muted">${n(r.total)} matches; the first ${n(r.hits.length)} are listed.</p>`
      : `<p class="muted">${n(r.total)} ${r.total === 1 ? 'match' : 'matches'}.</p>`;
  return `<table class="results"><thead><tr><th>address</th><th>state</th><th>namespace</th><th>pod</th><th>lease</th><th>sticky key</th></tr></thead><tbody>${rows}</tbody></table>${more}`;
};

export interface PoolPage {
  readonly pool: Pool;
  readonly map: PoolMap | undefined;
  readonly report: PoolReport | undefined;
  /** Why there is no map: the pool has no state, or the store did not answer. */
  readonly problem?: string | undefined;
  readonly search?: SearchResult | undefined;
  readonly pollMs: number;
}

export const renderPoolPage = (o: PageOptions, p: PoolPage): string => {
  const pool = p.pool;
  const facts = [
    `IPv${pool.family}`,
    pool.cidrText,
    pool.ranges.length > 0 ? `ranges ${pool.ranges.join(', ')}` : '',
    pool.exclude.length > 0 ? `exclude ${pool.exclude.join(', ')}` : '',
    pool.gateway === undefined ? '' : `gateway ${pool.gateway}`,
    `namespaces ${pool.namespaces.join(', ')}`,
  ]
    .filter(f => f !== '')
    .map(f => `<span>${escapeHtml(f)}</span>`)
    .join('');
  const head = `<div class="pool-head"><h1>${escapeHtml(pool.name)}</h1><p class="facts">${facts}</p>
<p class="asof" id="asof">${p.map === undefined ? '' : `as of ${utc(p.map.at)}`}</p></div>`;
  if (p.map === undefined) {
    return layout(
      { ...o, current: pool.name },
      `${head}<section class="card"><p class="warn">${escapeHtml(p.problem ?? 'no data')}</p></section>`,
    );
  }
  const map = p.map;
  const data = {
    api: `/api/pools/${encodeURIComponent(pool.name)}`,
    pollMs: String(p.pollMs),
    palette: JSON.stringify(map.unit > 1 ? AGGREGATE_PALETTE : PALETTE),
    words: JSON.stringify(STATE_WORDS),
  };
  const attrs = Object.entries(data)
    .map(([k, v]) => `data-${k.replace(/[A-Z]/g, c => `-${c.toLowerCase()}`)}="${escapeHtml(v)}"`)
    .join(' ');
  const cooldown =
    map.reuseCooldownMs > 0 ? ` (--reuse-cooldown ${formatDuration(map.reuseCooldownMs)})` : '';
  const body = `${head}
<div id="summary">${renderSummary(map, p.report)}</div>
<section class="card map-card">
<div class="map-tools">${renderSearch(pool, p.search)}<span class="live" id="live" title="refreshed every ${formatDuration(p.pollMs)}">live</span></div>
<div id="results">${p.search === undefined ? '' : renderResults(p.search)}</div>
${renderLegend(map)}
<p class="muted hint">Hover a cell for its address and lease, click to pin it${cooldown}.</p>
<div id="pool-map" ${attrs}>
<div id="detail" class="detail" aria-live="polite"></div>
<div id="grid" class="grid"></div>
<noscript><p class="muted">The grid is drawn by JavaScript; every number above is complete without it, and the search works.</p></noscript>
</div>
<div id="tip" class="tip" role="tooltip" hidden></div>
</section>
<script src="/assets/pool-map.js" defer></script>`;
  return layout({ ...o, title: pool.name, current: pool.name, preload: `${data.api}/map` }, body);
};

export interface IndexEntry {
  readonly pool: Pool;
  readonly stats: PoolStats | undefined;
  readonly report: PoolReport | undefined;
  readonly problem?: string | undefined;
}

export const renderIndexPage = (o: PageOptions, entries: readonly IndexEntry[]): string => {
  const cards = entries
    .map(e => {
      const link = `<h2><a href="${poolHref(e.pool.name)}">${escapeHtml(e.pool.name)}</a> <span class="muted">${escapeHtml(e.pool.cidrText)}</span></h2>`;
      if (e.stats === undefined) {
        return `<section class="card pool">${link}<p class="warn">${escapeHtml(e.problem ?? 'no data')}</p></section>`;
      }
      const findings =
        e.report === undefined
          ? ''
          : `<p class="muted">last reconcile ${utc(e.report.at)}: ${n(e.report.total)} findings</p>`;
      return `<section class="card pool">${link}${renderBar(e.stats)}${renderNumbers(e.stats)}${findings}</section>`;
    })
    .join('\n');
  return layout(o, `<h1>Pools</h1>\n${cards}`);
};

export const renderProblemPage = (o: PageOptions, heading: string, message: string): string =>
  layout(
    o,
    `<h1>${escapeHtml(heading)}</h1><section class="card"><p class="warn">${escapeHtml(message)}</p></section>`,
  );
