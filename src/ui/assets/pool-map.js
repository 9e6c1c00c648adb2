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

  let map = null;
  let etag = '';
  let shape = '';
  let holders = new Map();
  let aggregate = new Map();
  let findings = new Map();
  let matches = null;
  let pinned = -1;
  let canvases = [];
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

  const blocks = () => map.sections.flatMap(s => s.blocks);

  const chooseSize = count => {
    if (count <= 1) return [26, 2];
    if (count <= 4) return [16, 2];
    if (count <= 16) return [10, 1];
    return [4, 1];
  };

  /** The cell under a point of a block's canvas, or -1. */
  const cellAt = (canvas, x, y) => {
    const b = canvas._block;
    const col = Math.floor(x / step);
    const row = Math.floor(y / step) + canvas._row0;
    if (col < 0 || col > 15 || x - col * step >= size || y - (row - canvas._row0) * step >= size) {
      return -1;
    }
    const pos = row * 16 + col;
    if (pos < b.offset || pos >= b.offset + b.count) return -1;
    return b.first + pos - b.offset;
  };

  const blockOf = cell =>
    canvases.find(c => cell >= c._block.first && cell < c._block.first + c._block.count);

  const addrOf = cell => {
    const canvas = blockOf(cell);
    if (canvas === undefined) return undefined;
    const b = canvas._block;
    const pos = BigInt(cell - b.first + b.offset);
    return BigInt(b.base) + pos * BigInt(map.unit);
  };

  // ---- drawing -------------------------------------------------------------------------------

  const build = () => {
    gridEl.textContent = '';
    canvases = [];
    const all = blocks();
    [size, step] = (([s, g]) => [s, s + g])(chooseSize(all.length));
    const dpr = window.devicePixelRatio || 1;
    for (const section of map.sections) {
      const wrap = document.createElement('section');
      wrap.className = 'range';
      if (map.sections.length > 1 || map.family === 6) {
        const h = document.createElement('h3');
        h.textContent = section.title;
        wrap.append(h);
      }
      const list = document.createElement('div');
      list.className = 'blocks';
      for (const b of section.blocks) {
        const fig = document.createElement('figure');
        fig.className = 'block';
        const cap = document.createElement('figcaption');
        cap.textContent = b.label;
        const canvas = document.createElement('canvas');
        const row0 = Math.floor(b.offset / 16);
        const rows = Math.floor((b.offset + b.count - 1) / 16) - row0 + 1;
        const w = 16 * step - (step - size);
        const h = rows * step - (step - size);
        canvas.width = Math.round(w * dpr);
        canvas.height = Math.round(h * dpr);
        canvas.style.width = `${w}px`;
        canvas.style.height = `${h}px`;
        canvas._block = b;
        canvas._row0 = row0;
        Object.assign(canvas.dataset, {
          first: String(b.first),
          count: String(b.count),
          offset: String(b.offset),
          step: String(step),
          size: String(size),
        });
        fig.append(cap, canvas);
        list.append(fig);
        canvases.push(canvas);
      }
      wrap.append(list);
      gridEl.append(wrap);
    }
  };

  const drawBlock = canvas => {
    const b = canvas._block;
    const ctx = canvas.getContext('2d');
    const dpr = canvas.width / parseFloat(canvas.style.width);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const cells = map.cells;
    for (let i = 0; i < b.count; i++) {
      const cell = b.first + i;
      const pos = b.offset + i;
      const x = (pos % 16) * step;
      const y = (Math.floor(pos / 16) - canvas._row0) * step;
      ctx.globalAlpha = matches !== null && !matches.has(cell) ? 0.18 : 1;
      ctx.fillStyle = palette[cells[cell]] ?? '#000';
      ctx.fillRect(x, y, size, size);
      ctx.globalAlpha = 1;
      const mark = cell === pinned ? '#111827' : findings.has(cell) ? FLAG : undefined;
      if (mark !== undefined && size >= 4) {
        ctx.strokeStyle = mark;
        ctx.lineWidth = size >= 10 ? 2 : 1;
        const inset = ctx.lineWidth / 2;
        ctx.strokeRect(x + inset, y + inset, size - 2 * inset, size - 2 * inset);
      } else if (mark !== undefined) {
        ctx.fillStyle = mark;
        ctx.fillRect(x, y, size, size);
      }
    }
  };

  const draw = () => {
    for (const c of canvases) drawBlock(c);
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

  const describeAddress = cell => {
    const code = map.cells[cell];
    const v = addrOf(cell);
    const out = [
      `<div class="ip">${esc(formatAddr(v))}</div>`,
      `<div class="state" style="--c:${palette[code]}">${esc(words[code] ?? code)}</div>`,
    ];
    const row = holders.get(cell);
    if (row !== undefined) {
      const [, , ns, pod, id, created, bound, key, expires, released] = row;
      if (pod !== '') out.push(line('pod', `${ns}/${pod}`));
      else if (ns !== '') out.push(line('namespace', ns));
      if (id !== '') out.push(line('lease', id));
      if (key !== '') out.push(line('sticky key', key));
      if (created > 0)
        out.push(
          line('age', `${ago(map.at - created)} (leased ${new Date(created).toISOString()})`),
        );
      if (bound > 0) out.push(line('bound', `${ago(map.at - bound)} ago`));
      if (expires > 0 && code === 'p')
        out.push(line('expires', `in ${ago(expires - map.at)} unless its pod appears`));
      if (released > 0) {
        out.push(line('released', `${ago(map.at - released)} ago`));
        out.push(line('free again', `in ${ago(released + map.reuseCooldownMs - map.at)}`));
      }
    }
    return out;
  };

  const describeAggregate = cell => {
    const v = addrOf(cell);
    const last = v + BigInt(map.unit) - 1n;
    const label =
      map.family === 4 && map.unit === 256
        ? `${formatAddr(v)}/24`
        : `${formatAddr(v)} – ${formatAddr(last)}`;
    const alloc = map.alloc[cell] ?? 0;
    const [, bound, pending, pod, noPod, cooling] = aggregate.get(cell) ?? [cell, 0, 0, 0, 0, 0];
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

  const showTip = (cell, ev) => {
    if (cell < 0) {
      tip.hidden = true;
      return;
    }
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

  const pin = cell => {
    pinned = cell;
    detail.innerHTML =
      cell < 0
        ? ''
        : `<button type="button" class="close" aria-label="close">×</button>${describe(cell)}`;
    detail.classList.toggle('open', cell >= 0);
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
    holders = new Map(map.holders.map(r => [r[0], r]));
    aggregate = new Map(map.aggregate.map(r => [r[0], r]));
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
    if (pinned >= 0)
      detail.innerHTML = `<button type="button" class="close" aria-label="close">×</button>${describe(pinned)}`;
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
      if (first !== undefined)
        blockOf(first.cell)?.scrollIntoView({ block: 'center', behavior: 'smooth' });
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
    blockOf(cell)?.scrollIntoView({ block: 'center', behavior: 'smooth' });
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
