/**
 * The pool map's model (pure): a pool's address space cut into cells and blocks, each cell
 * coloured by what the store says of it. IPv4 draws the whole cidr, one block per /24; IPv6 (and
 * an IPv4 cidr larger than 2^24) draws its ranges. Up to MAX_CELLS addresses get a cell each;
 * a larger space gets one cell per 256 addresses (a /8: one per /24), coloured by how full it is.
 * Built from one `LeaseStore.snapshot` in one pass: nothing here calls the store.
 */
import {
  bits,
  cidrLast,
  formatRange,
  formatValue,
  mergeRanges,
  parseIp,
  parseRange,
  type Family,
  type IpRange,
} from '../ip/address.js';
import { indexToValue } from '../pool/layout.js';
import type { Pool } from '../pool/pools-file.js';
import type { PoolReport } from '../pool/report.js';
import type { LeaseRecord, PoolSnapshot, PoolStats } from '../pool/store.js';

/** One character per cell in `PoolMap.cells` (address cells). */
export const CELL = {
  free: '.',
  pending: 'p',
  bound: 'b',
  reserved: 'r',
  reservedPod: 'R',
  cooling: 'c',
  excluded: 'x',
  network: 'n',
  outside: 'o',
  gateway: 'g',
} as const;

/** Aggregated cells: how much of the cell's allocatable addresses is held; `x` none. */
export const AGGREGATE_CODES = ['0', '1', '2', '3', '4', '5', 'x'] as const;

/** Cells a map draws at most: a /16 gets one per address, a /8 one per /24. */
export const MAX_CELLS = 65_536;
/** Cells per block (a 16 × 16 square): a /24 of addresses, or a /16 of /24 cells. */
export const BLOCK_CELLS = 256;
/** Namespaces listed under "top namespaces". */
export const TOP_NAMESPACES = 10;

/** Colours, legend order and words: the page, the script and the tests all read them here. */
export const LEGEND: readonly { code: string; colour: string; label: string; hint: string }[] = [
  { code: CELL.free, colour: '#dde3ea', label: 'free', hint: 'may be leased now' },
  { code: CELL.bound, colour: '#2563eb', label: 'bound', hint: 'leased to a running pod' },
  {
    code: CELL.pending,
    colour: '#f59e0b',
    label: 'pending',
    hint: 'leased at admission, no pod bound yet',
  },
  {
    code: CELL.reservedPod,
    colour: '#7c3aed',
    label: 'sticky, pod',
    hint: "a StatefulSet ordinal's address, its pod holds it",
  },
  {
    code: CELL.reserved,
    colour: '#c4b5fd',
    label: 'sticky, no pod',
    hint: "a StatefulSet ordinal's address, kept while no pod runs",
  },
  {
    code: CELL.cooling,
    colour: '#14b8a6',
    label: 'cooling down',
    hint: 'released less than --reuse-cooldown ago',
  },
  { code: CELL.gateway, colour: '#e11d48', label: 'gateway', hint: 'never leased' },
  {
    code: CELL.excluded,
    colour: '#475569',
    label: 'excluded',
    hint: 'exclude:, network or broadcast, outside ranges:',
  },
];

/** Aggregated cells, from empty to full. */
export const AGGREGATE_LEGEND: readonly { code: string; colour: string; label: string }[] = [
  { code: '0', colour: '#dde3ea', label: 'all free' },
  { code: '1', colour: '#bfdbfe', label: '< 25 % held' },
  { code: '2', colour: '#60a5fa', label: '25–50 %' },
  { code: '3', colour: '#2563eb', label: '50–75 %' },
  { code: '4', colour: '#1e40af', label: '75–99 %' },
  { code: '5', colour: '#172554', label: 'full' },
  { code: 'x', colour: '#475569', label: 'nothing allocatable' },
];

/** Every code's colour; the excluded family (network, outside ranges) shares one. */
export const PALETTE: Readonly<Record<string, string>> = (() => {
  const p: Record<string, string> = {};
  for (const l of LEGEND) p[l.code] = l.colour;
  p[CELL.network] = p[CELL.excluded] ?? '';
  p[CELL.outside] = p[CELL.excluded] ?? '';
  return p;
})();
export const AGGREGATE_PALETTE: Readonly<Record<string, string>> = Object.fromEntries(
  AGGREGATE_LEGEND.map(l => [l.code, l.colour]),
);

export const STATE_WORDS: Readonly<Record<string, string>> = {
  [CELL.free]: 'free',
  [CELL.pending]: 'pending',
  [CELL.bound]: 'bound',
  [CELL.reserved]: 'sticky reservation, no pod',
  [CELL.reservedPod]: 'sticky reservation, pod running',
  [CELL.cooling]: 'cooling down',
  [CELL.excluded]: 'excluded by the pool',
  [CELL.network]: 'network or broadcast address',
  [CELL.outside]: "outside the pool's ranges",
  [CELL.gateway]: 'gateway',
};

export interface MapBlock {
  readonly label: string;
  /** Index of the block's first cell in `PoolMap.cells`. */
  readonly first: number;
  readonly count: number;
  /** Position of the first cell in the block's 16 × 16 square. */
  readonly offset: number;
  /** Address (decimal) of square position 0: a cell's first address is base + position × unit. */
  readonly base: string;
}

export interface MapSection {
  readonly title: string;
  readonly blocks: readonly MapBlock[];
}

/**
 * An address cell that something holds:
 * `[cell, code, namespace, pod, leaseId, createdAt, boundAt, stickyKey, expiresAt, releasedAt]`
 * (0 and '' for what does not apply).
 */
export type HolderRow = [
  cell: number,
  code: string,
  namespace: string,
  pod: string,
  leaseId: string,
  createdAt: number,
  boundAt: number,
  stickyKey: string,
  expiresAt: number,
  releasedAt: number,
];

/** An aggregated cell with something held: `[cell, bound, pending, sticky pod, sticky no pod, cooling]`. */
export type AggregateRow = [number, number, number, number, number, number];

export interface NamespaceUse {
  readonly namespace: string;
  /** Addresses held: leases, and sticky reservations no pod holds. */
  readonly held: number;
  readonly bound: number;
  readonly pending: number;
  readonly reserved: number;
}

export interface MapFinding {
  readonly cell: number | undefined;
  readonly ip: string | undefined;
  readonly kind: string;
  readonly message: string;
}

export interface PoolMap {
  readonly pool: string;
  readonly family: Family;
  readonly cidr: string;
  readonly gateway: string | undefined;
  readonly at: number;
  readonly reuseCooldownMs: number;
  /** False while the pool waits for a rebuild (no epoch). */
  readonly ready: boolean;
  readonly stats: PoolStats;
  /** Addresses per cell: 1, or 256 (a /8: one cell per /24). */
  readonly unit: number;
  readonly sections: readonly MapSection[];
  /** One code per cell (CELL, or AGGREGATE_CODES when unit > 1). */
  readonly cells: string;
  /** Unit 1: every cell something holds. */
  readonly holders: readonly HolderRow[];
  /** Unit > 1: allocatable addresses of every cell. */
  readonly alloc: readonly number[];
  /** Unit > 1: every cell with something held. */
  readonly aggregate: readonly AggregateRow[];
  readonly namespaces: readonly NamespaceUse[];
  readonly namespaceCount: number;
  /** The last reconcile's findings, with the cell of their address (undefined: not drawn). */
  readonly findings: readonly MapFinding[];
  /** Held addresses the store has outside this replica's view of the pool (another pools file). */
  readonly outside: number;
}

interface Span {
  readonly range: IpRange;
  readonly title: string;
  /** Index of the span's first cell. */
  readonly cellStart: number;
  /** First and last cell number (address / unit). */
  readonly cFirst: bigint;
  readonly cLast: bigint;
}

/** The cells of a pool and the address ↔ cell arithmetic. */
export class Grid {
  readonly pool: Pool;
  readonly unit: bigint;
  readonly spans: readonly Span[];
  readonly total: number;

  constructor(pool: Pool) {
    this.pool = pool;
    const ranges = spanRanges(pool);
    const addresses = ranges.reduce((n, r) => n + r.last - r.first + 1n, 0n);
    let unit = 1n;
    while (addresses / unit > BigInt(MAX_CELLS)) unit *= 256n;
    this.unit = unit;
    let start = 0;
    this.spans = ranges.map(range => {
      const cFirst = range.first / unit;
      const cLast = range.last / unit;
      const title =
        ranges.length === 1 && range.first === pool.cidr.network
          ? pool.cidrText
          : formatRange(range);
      const s = { range, title, cellStart: start, cFirst, cLast };
      start += Number(cLast - cFirst + 1n);
      return s;
    });
    this.total = start;
  }

  /** The cell of an address value, or undefined outside the drawn space. */
  cellOf(value: bigint): number | undefined {
    for (const s of this.spans) {
      if (value >= s.range.first && value <= s.range.last) {
        return s.cellStart + Number(value / this.unit - s.cFirst);
      }
    }
    return undefined;
  }

  /** Calls `fn(cell, count)` for every cell the range overlaps, with the overlap's size. */
  eachCell(range: IpRange, fn: (cell: number, count: number) => void): void {
    for (const s of this.spans) {
      const lo = range.first > s.range.first ? range.first : s.range.first;
      const hi = range.last < s.range.last ? range.last : s.range.last;
      if (lo > hi) continue;
      if (this.unit === 1n) {
        const from = s.cellStart + Number(lo - s.range.first);
        const n = Number(hi - lo) + 1;
        for (let i = 0; i < n; i++) fn(from + i, 1);
        continue;
      }
      for (let c = lo / this.unit; c <= hi / this.unit; c++) {
        const cLo = c * this.unit > lo ? c * this.unit : lo;
        const cHi = (c + 1n) * this.unit - 1n < hi ? (c + 1n) * this.unit - 1n : hi;
        fn(s.cellStart + Number(c - s.cFirst), Number(cHi - cLo) + 1);
      }
    }
  }

  sections(): MapSection[] {
    const family = this.pool.family;
    const blockAddresses = BigInt(BLOCK_CELLS) * this.unit;
    const prefix = bits(family) - Math.log2(Number(blockAddresses));
    return this.spans.map(s => {
      const blocks: MapBlock[] = [];
      const b0 = s.cFirst / BigInt(BLOCK_CELLS);
      const b1 = s.cLast / BigInt(BLOCK_CELLS);
      for (let b = b0; b <= b1; b++) {
        const gridFirst = b * BigInt(BLOCK_CELLS);
        const first = gridFirst > s.cFirst ? gridFirst : s.cFirst;
        const lastGrid = gridFirst + BigInt(BLOCK_CELLS) - 1n;
        const last = lastGrid < s.cLast ? lastGrid : s.cLast;
        const whole = first === gridFirst && last === lastGrid;
        const lo = first * this.unit > s.range.first ? first * this.unit : s.range.first;
        const hiCell = (last + 1n) * this.unit - 1n;
        const hi = hiCell < s.range.last ? hiCell : s.range.last;
        blocks.push({
          label: whole
            ? `${formatValue(family, gridFirst * this.unit)}/${prefix}`
            : b0 === b1 && s.title === this.pool.cidrText
              ? s.title
              : `${formatValue(family, lo)} – ${formatValue(family, hi)}`,
          first: s.cellStart + Number(first - s.cFirst),
          count: Number(last - first + 1n),
          offset: Number(first - gridFirst),
          base: String(gridFirst * this.unit),
        });
      }
      return { title: s.title, blocks };
    });
  }
}

/** IPv4 up to 2^24 addresses: the whole cidr; else the pool's ranges (or its cidr). */
const spanRanges = (pool: Pool): IpRange[] => {
  const whole: IpRange = {
    family: pool.family,
    first: pool.cidr.network,
    last: cidrLast(pool.cidr),
  };
  if (pool.family === 4 && pool.cidr.size <= 2n ** 24n) return [whole];
  const ranges = pool.ranges.map(r => parseRange(r)).filter((r): r is IpRange => r !== undefined);
  return ranges.length > 0 ? mergeRanges(ranges) : [whole];
};

const podName = (l: LeaseRecord): string => l.name ?? `${l.generateName ?? ''}*`;

/** The address value of a snapshot entry: by index when the layouts agree, else by its text. */
const valueOf = (
  pool: Pool,
  snap: PoolSnapshot,
  entry: { index: number; ip: string },
): bigint | undefined =>
  snap.layoutHash === pool.layout.hash
    ? indexToValue(pool.layout, entry.index)
    : parseIp(entry.ip)?.value;

interface Marks {
  readonly grid: Grid;
  outside: number;
}

const cellOfEntry = (
  m: Marks,
  snap: PoolSnapshot,
  entry: { index: number; ip: string },
): number | undefined => {
  const v = valueOf(m.grid.pool, snap, entry);
  const cell = v === undefined ? undefined : m.grid.cellOf(v);
  if (cell === undefined) m.outside++;
  return cell;
};

const CODE = (c: string): number => c.charCodeAt(0);

/** Address cells of the layout alone: free, excluded, network, outside the ranges, gateway. */
const layoutCodes = (grid: Grid): Uint8Array => {
  const pool = grid.pool;
  const codes = new Uint8Array(grid.total).fill(CODE(CELL.outside));
  for (const text of pool.exclude) {
    const r = parseRange(text);
    if (r !== undefined) grid.eachCell(r, c => (codes[c] = CODE(CELL.excluded)));
  }
  const net = pool.cidr.network;
  const special =
    pool.family === 4 ? (pool.cidr.prefix < 31 ? [net, cidrLast(pool.cidr)] : []) : [net];
  for (const v of special) {
    const c = grid.cellOf(v);
    if (c !== undefined) codes[c] = CODE(CELL.network);
  }
  for (const seg of pool.layout.segments) {
    const r = { family: pool.family, first: seg.first, last: seg.first + BigInt(seg.count - 1) };
    grid.eachCell(r, c => (codes[c] = CODE(CELL.free)));
  }
  const gw = pool.gateway === undefined ? undefined : parseIp(pool.gateway);
  const gwCell = gw === undefined ? undefined : grid.cellOf(gw.value);
  if (gwCell !== undefined) codes[gwCell] = CODE(CELL.gateway);
  return codes;
};

const leaseRow = (cell: number, code: string, l: LeaseRecord): HolderRow => [
  cell,
  code,
  l.namespace,
  podName(l),
  l.id,
  l.createdAt,
  l.boundAt ?? 0,
  l.stickyKey ?? '',
  l.expiresAt ?? 0,
  0,
];

/** Address cells: the pool's layout first, then what the snapshot holds. */
const addressCells = (m: Marks, snap: PoolSnapshot) => {
  const codes = layoutCodes(m.grid);
  const rows = new Map<number, HolderRow>();
  const mark = (cell: number, code: string, row: HolderRow): void => {
    codes[cell] = CODE(code);
    rows.set(cell, row);
  };
  for (const c of snap.cooling) {
    const cell = cellOfEntry(m, snap, c);
    if (cell !== undefined) {
      mark(cell, CELL.cooling, [cell, CELL.cooling, '', '', '', 0, 0, '', 0, c.releasedAt]);
    }
  }
  for (const l of snap.leases) {
    const cell = cellOfEntry(m, snap, l);
    const code = l.state === 'bound' ? CELL.bound : CELL.pending;
    if (cell !== undefined) mark(cell, code, leaseRow(cell, code, l));
  }
  for (const r of snap.reservations) {
    const cell = cellOfEntry(m, snap, r);
    if (cell === undefined) continue;
    const held = r.leaseId === undefined ? undefined : rows.get(cell);
    if (held !== undefined) {
      held[1] = CELL.reservedPod;
      held[7] = r.key;
      codes[cell] = CODE(CELL.reservedPod);
    } else {
      const ns = r.key.split('/')[0] ?? '';
      mark(cell, CELL.reserved, [cell, CELL.reserved, ns, '', '', 0, 0, r.key, 0, 0]);
    }
  }
  const holders = [...rows.values()].sort((a, b) => a[0] - b[0]);
  return { cells: Buffer.from(codes).toString('latin1'), holders };
};

const bucket = (alloc: number, held: number): string => {
  if (alloc === 0) return 'x';
  if (held === 0) return '0';
  if (held >= alloc) return '5';
  return String(1 + Math.min(3, Math.floor((held / alloc) * 4)));
};

/** Aggregated cells: allocatable per cell from the layout, held per cell from the snapshot. */
const aggregateCells = (m: Marks, snap: PoolSnapshot) => {
  const { grid } = m;
  const pool = grid.pool;
  const alloc = new Array<number>(grid.total).fill(0);
  for (const seg of pool.layout.segments) {
    const r = { family: pool.family, first: seg.first, last: seg.first + BigInt(seg.count - 1) };
    grid.eachCell(r, (c, n) => (alloc[c] = (alloc[c] ?? 0) + n));
  }
  const held = new Map<number, AggregateRow>();
  const add = (cell: number | undefined, column: 1 | 2 | 3 | 4 | 5): void => {
    if (cell === undefined) return;
    let row = held.get(cell);
    if (row === undefined) {
      row = [cell, 0, 0, 0, 0, 0];
      held.set(cell, row);
    }
    row[column]++;
  };
  const reservedWithLease = new Set<string>();
  for (const r of snap.reservations) {
    if (r.leaseId !== undefined) reservedWithLease.add(r.leaseId);
    add(cellOfEntry(m, snap, r), r.leaseId === undefined ? 4 : 3);
  }
  for (const l of snap.leases) {
    if (reservedWithLease.has(l.id)) continue;
    add(cellOfEntry(m, snap, l), l.state === 'bound' ? 1 : 2);
  }
  for (const c of snap.cooling) add(cellOfEntry(m, snap, c), 5);
  let cells = '';
  for (let c = 0; c < grid.total; c++) {
    const row = held.get(c);
    const n = row === undefined ? 0 : row[1] + row[2] + row[3] + row[4] + row[5];
    cells += bucket(alloc[c] ?? 0, n);
  }
  return { cells, alloc, aggregate: [...held.values()].sort((a, b) => a[0] - b[0]) };
};

/** Namespaces by addresses held: leases, and sticky reservations no pod holds. */
export const namespaceUse = (snap: PoolSnapshot): NamespaceUse[] => {
  const by = new Map<string, { held: number; bound: number; pending: number; reserved: number }>();
  const of = (ns: string) => {
    let u = by.get(ns);
    if (u === undefined) {
      u = { held: 0, bound: 0, pending: 0, reserved: 0 };
      by.set(ns, u);
    }
    return u;
  };
  for (const l of snap.leases) {
    const u = of(l.namespace);
    u.held++;
    if (l.state === 'bound') u.bound++;
    else u.pending++;
  }
  for (const r of snap.reservations) {
    const u = of(r.key.split('/')[0] ?? '');
    u.reserved++;
    if (r.leaseId === undefined) u.held++;
  }
  return [...by.entries()]
    .map(([namespace, u]) => ({ namespace, ...u }))
    .sort((a, b) => b.held - a.held || a.namespace.localeCompare(b.namespace));
};

/** Builds the map of a pool from one snapshot and the last reconcile's report. */
export const buildPoolMap = (
  pool: Pool,
  snap: PoolSnapshot,
  report: PoolReport | undefined,
): PoolMap => {
  const grid = new Grid(pool);
  const marks: Marks = { grid, outside: 0 };
  const cells =
    grid.unit === 1n
      ? { ...addressCells(marks, snap), alloc: [], aggregate: [] }
      : { ...aggregateCells(marks, snap), holders: [] };
  const findings = (report?.findings ?? []).map(f => {
    const v = f.ip === undefined ? undefined : parseIp(f.ip);
    const cell = v === undefined || v.family !== pool.family ? undefined : grid.cellOf(v.value);
    return { cell, ip: f.ip, kind: f.kind, message: f.message };
  });
  const namespaces = namespaceUse(snap);
  return {
    pool: pool.name,
    family: pool.family,
    cidr: pool.cidrText,
    gateway: pool.gateway,
    at: snap.at,
    reuseCooldownMs: snap.reuseCooldownMs,
    ready: snap.epoch !== undefined,
    stats: snap.stats,
    unit: Number(grid.unit),
    sections: grid.sections(),
    ...cells,
    namespaces: namespaces.slice(0, TOP_NAMESPACES),
    namespaceCount: namespaces.length,
    findings,
    outside: marks.outside,
  };
};
