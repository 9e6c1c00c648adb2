// The pool map's grid (podlease serve --ui-listen), plain JavaScript with no build step: draws
// one canvas per block from /api/pools/<pool>/map, explains a cell on hover or click, runs the
// search box against /api/pools/<pool>/search, and polls for changes (one request in flight,
// paused while the tab is hidden, slower after errors). The numbers are rendered by the server.
'use strict';

(() => {
  const root = document.getElementById('pool-map');
  if (root === null) return;
  const api = root.dataset.api;
  const pollMs = Number(root.dataset.pollMs) || 5000;
  const palette = JSON.parse(root.dataset.palette);
  const words = JSON.parse(root.dataset.words);
  const gridEl = document.getElementById('grid');
  const tip = document.getElementById('tip');
  const detail = document.getElementById('detail');
  const live = document.getElementById('live');
  const summary = document.getElementById('summary');
  const asof = document.getElementById('asof');
  const form = document.getElementById('search');
  const results = document.getElementById('results');
  const FLAG = '#dc2626';
  /** Codes of address cells something holds: their details come from the server. */
  const HELD = new Set(['p', 'b', 'r', 'R', 'c']);
  const asked = new Set();

  let map = null;
  let etag = '';
  let shape = '';
  /** Cell details (lease, counts), fetched on hover and kept until the next map. */
  let details = new Map();
  let hovered = -1;
  let lastEvent = null;
  let findings = new Map();
  let matches = null;
  let pinned = -1;
  let canvases = [];
  let laidOutFor = 0;
  let step = 6;
  let size = 5;
  let lastOk = 0;

  // ---- addresses -----------------------------------------------------------------------------

  const formatV4 = v => [24n, 16n, 8n, 0n].map(s => String((v >> s) & 255n)).join('.');
  const formatV6 = v => {
    const groups = [];
    for (let s = 112n; s >= 0n; s -= 16n) groups.push(Number((v >> s) & 0xffffn));
    let best = -1;
    let bestLen = 1;
    for (let i = 0; i < 8;) {
      if (groups[i] !== 0) {
        i++;
        continue;
      }
      let j = i;
      while (j < 8 && groups[j] === 0) j++;
      if (j - i > bestLen) {
        best = i;
        bestLen = j - i;
      }
      i = j;
    }
    const hex = groups.map(g => g.toString(16));
    if (best < 0) return hex.join(':');
    return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
  };
  const formatAddr = v => (map.family === 4 ? formatV4(v) : formatV6(v));

  // ---- time ----------------------------------------------------------------------------------

  const ago = ms => {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${s % 60}s`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h}h ${m % 60}m`;
    return `${Math.floor(h / 24)}d ${h % 24}h`;
  };

  // ---- geometry ------------------------------------------------------------------------------

  /** Space above each block for its label, and between blocks (CSS px). */
  const LABEL = 14;
  const GAP_X = 14;
  const GAP_Y = 12;

  const chooseSize = count => {
    if (count <= 1) return [26, 2];
    if (count <= 4) return [16, 2];
    if (count <= 16) return [10, 1];
    return [4, 1];
  };

  const blockWidth = () => 16 * step - (step - size);

  /** A section's blocks in rows as wide as the grid: where each block's square starts. */
  const layoutSection = (section, width) => {
    const pitchX = blockWidth() + GAP_X;
    const cols = Math.max(1, Math.floor((width + GAP_X) / pitchX));
    const placed = [];
    let y = 0;
    for (let k = 0; k < section.blocks.length; k += cols) {
      let rowsMax = 1;
      section.blocks.slice(k, k + cols).forEach((b, j) => {
        const row0 = Math.floor(b.offset / 16);
        const rows = Math.floor((b.offset + b.count - 1) / 16) - row0 + 1;
        rowsMax = Math.max(rowsMax, rows);
        placed.push({ b, x: j * pitchX, y: y + LABEL, row0, rows });
      });
      y += LABEL + rowsMax * step - (step - size) + GAP_Y;
    }
    const used = Math.min(section.blocks.length, cols) * pitchX - GAP_X;
    return { placed, width: used, height: y - GAP_Y };
  };

  /** The cell under a point of a section's canvas, or -1. */
  const cellAt = (canvas, x, y) => {
    const w = blockWidth();
    const p = canvas._placed.find(
      q => x >= q.x && x < q.x + w && y >= q.y && y < q.y + q.rows * step,
    );
    if (p === undefined) return -1;
    const col = Math.floor((x - p.x) / step);
    const row = Math.floor((y - p.y) / step);
    if (x - p.x - col * step >= size || y - p.y - row * step >= size) return -1;
    const pos = (row + p.row0) * 16 + col;
    if (pos < p.b.offset || pos >= p.b.offset + p.b.count) return -1;
    return p.b.first + pos - p.b.offset;
  };

  /** The placed block holding a cell, with its canvas. */
  const placeOf = cell => {
    for (const canvas of canvases) {
      const p = canvas._placed.find(q => cell >= q.b.first && cell < q.b.first + q.b.count);
      if (p !== undefined) return { canvas, p };
    }
    return undefined;
  };

  const addrOf = cell => {
    const at = placeOf(cell);
    if (at === undefined) return undefined;
    const b = at.p.b;
    return BigInt(b.base) + BigInt(cell - b.first + b.offset) * BigInt(map.unit);
  };

  const scrollToCell = cell => {
    const at = placeOf(cell);
    if (at === undefined) return;
    const top = at.canvas.getBoundingClientRect().top + window.scrollY + at.p.y;
    window.scrollTo({ top: Math.max(0, top - window.innerHeight / 2), behavior: 'smooth' });
  };

  // ---- drawing -------------------------------------------------------------------------------

  // One canvas per section (a /16: one canvas for its 256 blocks), drawn as one ImageData.
  const build = () => {
    gridEl.textContent = '';
    canvases = [];
    const count = map.sections.reduce((n, sec) => n + sec.blocks.length, 0);
    [size, step] = (([s, g]) => [s, s + g])(chooseSize(count));
    const dpr = window.devicePixelRatio || 1;
    const width = Math.max(blockWidth(), gridEl.clientWidth);
    for (const section of map.sections) {
      const wrap = document.createElement('section');
      wrap.className = 'range';
      if (map.sections.length > 1 || map.family === 6) {
        const h = document.createElement('h3');
        h.textContent = section.title;
        wrap.append(h);
      }
      const lay = layoutSection(section, width);
      const canvas = document.createElement('canvas');
      canvas.width = Math.round(lay.width * dpr);
      canvas.height = Math.round(lay.height * dpr);
      canvas.style.width = `${lay.width}px`;
      canvas.style.height = `${lay.height}px`;
      canvas._placed = lay.placed;
      Object.assign(canvas.dataset, {
        step: String(step),
        size: String(size),
        layout: JSON.stringify(lay.placed.map(p => [p.b.first, p.b.count, p.b.offset, p.x, p.y])),
      });
      wrap.append(canvas);
      gridEl.append(wrap);
      canvases.push(canvas);
    }
    laidOutFor = gridEl.clientWidth;
  };

  /** Palette entries as RGBA words for ImageData (little-endian: 0xAABBGGRR), by code. */
  const wordsOf = alpha => {
    const out = {};
    for (const [code, hex] of Object.entries(palette)) {
      const n = parseInt(hex.slice(1), 16);
      out[code] = ((alpha << 24) | ((n & 255) << 16) | (n & 0xff00) | (n >> 16)) >>> 0;
    }
    return out;
  };
  const FULL = wordsOf(255);
  const DIM = wordsOf(46);

  const fillCells = ({ px, width, dpr }, p, marks) => {
    const cells = map.cells;
    const edge = k => [Math.round(k * dpr), Math.round((k + size) * dpr)];
    for (let i = 0; i < p.b.count; i++) {
      const cell = p.b.first + i;
      const pos = p.b.offset + i;
      const [x0, x1] = edge(p.x + (pos & 15) * step);
      const [y0, y1] = edge(p.y + ((pos >> 4) - p.row0) * step);
      const word = (matches !== null && !matches.has(cell) ? DIM : FULL)[cells[cell]] ?? 0xff000000;
      for (let y = y0; y < y1; y++) {
        const line = y * width;
        for (let x = x0; x < x1; x++) px[line + x] = word;
      }
      if (cell === pinned || findings.has(cell)) marks.push([cell, p, pos]);
    }
  };

  const drawMark = (ctx, cell, p, pos) => {
    const x = p.x + (pos & 15) * step;
    const y = p.y + ((pos >> 4) - p.row0) * step;
    ctx.strokeStyle = cell === pinned ? '#111827' : FLAG;
    ctx.fillStyle = ctx.strokeStyle;
    if (size < 4) {
      ctx.fillRect(x, y, size, size);
      return;
    }
    ctx.lineWidth = size >= 10 ? 2 : 1;
    const inset = ctx.lineWidth / 2;
    ctx.strokeRect(x + inset, y + inset, size - 2 * inset, size - 2 * inset);
  };

  const drawSection = canvas => {
    const ctx = canvas.getContext('2d');
    const width = canvas.width;
    const dpr = width / parseFloat(canvas.style.width);
    const img = ctx.createImageData(width, canvas.height);
    const px = new Uint32Array(img.data.buffer);
    const marks = [];
    for (const p of canvas._placed) fillCells({ px, width, dpr }, p, marks);
    ctx.putImageData(img, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.font = '10px ui-monospace, "DejaVu Sans Mono", monospace';
    ctx.fillStyle = '#6b7280';
    ctx.textBaseline = 'bottom';
    for (const p of canvas._placed) ctx.fillText(p.b.label, p.x, p.y - 2);
    for (const [cell, p, pos] of marks) drawMark(ctx, cell, p, pos);
  };

  const draw = () => {
    for (const c of canvases) drawSection(c);
    root.dataset.drawnAt = String(performance.now());
    root.dataset.cells = String(map.cells.length);
  };

  // ---- explaining a cell ---------------------------------------------------------------------

  const esc = s =>
    String(s).replace(
      /[&<>"]/g,
      c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c],
    );
  const line = (k, v) => `<div><span class="k">${esc(k)}</span> ${esc(v)}</div>`;

  /** The lines of a held address: pod, lease, sticky key, ages. */
  const holderLines = (row, code) => {
    const out = [];
    const [, , ns, pod, id, created, bound, key, expires, released] = row;
    if (pod !== '') out.push(line('pod', `${ns}/${pod}`));
    else if (ns !== '') out.push(line('namespace', ns));
    if (id !== '') out.push(line('lease', id));
    if (key !== '') out.push(line('sticky key', key));
    if (created > 0)
      out.push(line('age', `${ago(map.at - created)} (leased ${new Date(created).toISOString()})`));
    if (bound > 0) out.push(line('bound', `${ago(map.at - bound)} ago`));
    if (expires > 0 && code === 'p') {
      out.push(
        expires > map.at
          ? line('expires', `in ${ago(expires - map.at)} unless its pod appears`)
          : line('expired', `${ago(map.at - expires)} ago: released once no pod carries it`),
      );
    }
    if (released > 0) {
      out.push(line('released', `${ago(map.at - released)} ago`));
      out.push(line('free again', `in ${ago(released + map.reuseCooldownMs - map.at)}`));
    }
    return out;
  };

  const describeAddress = cell => {
    const code = map.cells[cell];
    const v = addrOf(cell);
    const out = [
      `<div class="ip">${esc(formatAddr(v))}</div>`,
      `<div class="state" style="--c:${palette[code]}">${esc(words[code] ?? code)}</div>`,
    ];
    const d = details.get(cell);
    if (d === undefined && HELD.has(code)) out.push('<div class="k">loading…</div>');
    const row = d?.holder;
    if (row !== undefined && row !== null) out.push(...holderLines(row, code));
    return out;
  };

  const describeAggregate = cell => {
    const v = addrOf(cell);
    const last = v + BigInt(map.unit) - 1n;
    const label =
      map.family === 4 && map.unit === 256
        ? `${formatAddr(v)}/24`
        : `${formatAddr(v)} – ${formatAddr(last)}`;
    const d = details.get(cell);
    if (d === undefined)
      return [`<div class="ip">${esc(label)}</div>`, '<div class="k">loading…</div>'];
    const alloc = d.alloc ?? 0;
    const [, bound, pending, pod, noPod, cooling] = d.aggregate ?? [cell, 0, 0, 0, 0, 0];
    const held = bound + pending + pod + noPod + cooling;
    return [
      `<div class="ip">${esc(label)}</div>`,
      line('allocatable', String(alloc)),
      line('bound', String(bound)),
      line('pending', String(pending)),
      line('sticky, pod', String(pod)),
      line('sticky, no pod', String(noPod)),
      line('cooling down', String(cooling)),
      line('free', String(Math.max(0, alloc - held))),
    ];
  };

  const describe = cell => {
    const out = map.unit === 1 ? describeAddress(cell) : describeAggregate(cell);
    for (const f of findings.get(cell) ?? []) {
      out.push(`<div class="finding"><b>${esc(f.kind)}</b> ${esc(f.message)}</div>`);
    }
    return out.join('');
  };

  /** Asks the server for a cell's lease or counts once; shows them when they come. */
  const wantDetail = cell => {
    if (details.has(cell) || asked.has(cell)) return;
    if (map.unit === 1 && !HELD.has(map.cells[cell])) return;
    asked.add(cell);
    const forMap = map;
    fetch(`${api}/cells/${cell}`)
      .then(res => (res.ok ? res.json() : Promise.reject(new Error(`HTTP ${res.status}`))))
      .then(d => {
        if (map !== forMap) return;
        details.set(cell, d);
        if (hovered === cell && lastEvent !== null) showTip(cell, lastEvent);
        if (pinned === cell) showPinned();
      })
      .catch(() => undefined)
      .finally(() => asked.delete(cell));
  };

  const showTip = (cell, ev) => {
    hovered = cell;
    lastEvent = ev;
    if (cell < 0) {
      tip.hidden = true;
      return;
    }
    wantDetail(cell);
    tip.innerHTML = describe(cell);
    tip.hidden = false;
    const pad = 14;
    const r = tip.getBoundingClientRect();
    let x = ev.clientX + pad;
    let y = ev.clientY + pad;
    if (x + r.width > window.innerWidth) x = ev.clientX - r.width - pad;
    if (y + r.height > window.innerHeight) y = ev.clientY - r.height - pad;
    tip.style.left = `${Math.max(0, x)}px`;
    tip.style.top = `${Math.max(0, y)}px`;
  };

  const showPinned = () => {
    detail.innerHTML =
      pinned < 0
        ? ''
        : `<button type="button" class="close" aria-label="close">×</button>${describe(pinned)}`;
    detail.classList.toggle('open', pinned >= 0);
  };

  const pin = cell => {
    pinned = cell;
    if (cell >= 0) wantDetail(cell);
    showPinned();
    draw();
  };

  gridEl.addEventListener('mousemove', ev => {
    const t = ev.target;
    if (!(t instanceof HTMLCanvasElement)) {
      tip.hidden = true;
      return;
    }
    const r = t.getBoundingClientRect();
    showTip(cellAt(t, ev.clientX - r.left, ev.clientY - r.top), ev);
  });
  gridEl.addEventListener('mouseleave', () => {
    hovered = -1;
    tip.hidden = true;
  });
  gridEl.addEventListener('click', ev => {
    const t = ev.target;
    if (!(t instanceof HTMLCanvasElement)) return;
    const r = t.getBoundingClientRect();
    const cell = cellAt(t, ev.clientX - r.left, ev.clientY - r.top);
    pin(cell === pinned ? -1 : cell);
  });
  detail.addEventListener('click', ev => {
    if (ev.target instanceof HTMLButtonElement) pin(-1);
  });

  // ---- data ----------------------------------------------------------------------------------

  const install = next => {
    map = next;
    details = new Map();
    findings = new Map();
    for (const f of map.findings) {
      if (f.cell === undefined || f.cell === null) continue;
      const list = findings.get(f.cell) ?? [];
      list.push(f);
      findings.set(f.cell, list);
    }
    const nextShape = JSON.stringify([map.unit, map.sections]);
    if (nextShape !== shape) {
      shape = nextShape;
      build();
    }
    draw();
    if (pinned >= 0) wantDetail(pinned);
    showPinned();
  };

  let failures = 0;
  let timer = 0;

  const schedule = () => {
    clearTimeout(timer);
    const delay = failures === 0 ? pollMs : Math.min(pollMs * 2 ** failures, 60000);
    timer = setTimeout(poll, delay);
  };

  const setLive = (text, cls) => {
    live.textContent = text;
    live.className = `live ${cls}`;
  };

  const poll = async () => {
    if (document.hidden) {
      schedule();
      return;
    }
    try {
      const res = await fetch(`${api}/map`, {
        headers: etag === '' ? {} : { 'if-none-match': etag },
      });
      if (res.status === 304) {
        // Unchanged: ages go on from the time of the last answer.
        if (map !== null) map.at += Date.now() - lastOk;
        lastOk = Date.now();
      } else if (res.ok) {
        etag = res.headers.get('etag') ?? '';
        const next = await res.json();
        summary.innerHTML = next.summaryHtml;
        asof.textContent = `as of ${new Date(next.at).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
        install(next);
        lastOk = Date.now();
      } else {
        throw new Error(`HTTP ${res.status}`);
      }
      failures = 0;
      setLive('live', 'ok');
    } catch (err) {
      failures++;
      setLive(`stale (${err instanceof Error ? err.message : 'error'})`, 'stale');
    }
    root.dataset.polledAt = String(Date.now());
    schedule();
  };

  let resizing = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      if (map !== null && gridEl.clientWidth !== laidOutFor) {
        build();
        draw();
      }
    }, 150);
  });

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && Date.now() - lastOk > pollMs) void poll();
  });

  // ---- search --------------------------------------------------------------------------------

  const search = async q => {
    const url = new URL(window.location.href);
    if (q === '') {
      matches = null;
      results.innerHTML = '';
      url.searchParams.delete('q');
    } else {
      const res = await fetch(`${api}/search?q=${encodeURIComponent(q)}`);
      const r = await res.json();
      results.innerHTML = r.html;
      matches = new Set(r.hits.map(h => h.cell).filter(c => c !== null && c !== undefined));
      url.searchParams.set('q', q);
      const first = r.hits.find(h => h.cell !== undefined && h.cell !== null);
      if (first !== undefined) scrollToCell(first.cell);
    }
    history.replaceState(null, '', url);
    if (map !== null) draw();
    root.dataset.searched = q;
  };

  form.addEventListener('submit', ev => {
    ev.preventDefault();
    void search(new FormData(form).get('q').toString().trim());
  });
  results.addEventListener('click', ev => {
    const tr = ev.target instanceof Element ? ev.target.closest('tr[data-cell]') : null;
    if (tr === null || tr.dataset.cell === '') return;
    const cell = Number(tr.dataset.cell);
    scrollToCell(cell);
    pin(cell);
  });

  // ---- start ---------------------------------------------------------------------------------

  const start = async () => {
    await poll();
    const q = new URL(window.location.href).searchParams.get('q');
    if (q !== null && q.trim() !== '') {
      const rows = [...results.querySelectorAll('tr[data-cell]')]
        .map(tr => tr.dataset.cell)
        .filter(c => c !== '');
      matches = new Set(rows.map(Number));
      draw();
    }
    root.dataset.ready = 'true';
  };
  void start();
})();
