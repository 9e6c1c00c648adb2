/**
 * The allocatable address space of a pool, laid out as one dense index space: index 0 is the
 * first usable address of the first range, index size-1 the last usable address of the last one.
 * Stores keep one bit (or slot) per index, so allocation never depends on how sparse the cidr is.
 *
 * The layout is a pure function of the pool's config. Its hash travels with every mutation, so
 * two replicas running different pool configs can never write to one pool (the store refuses
 * with LayoutMismatch until they agree).
 */
import { createHash } from 'node:crypto';
import { formatValue, parseIp, type Family, type IpRange } from '../ip/address.js';

export interface Segment {
  /** First address of the segment. */
  readonly first: bigint;
  /** Number of addresses. */
  readonly count: number;
  /** Index of `first` in the pool's index space. */
  readonly offset: number;
}

export interface Layout {
  readonly family: Family;
  readonly segments: readonly Segment[];
  /** Number of allocatable addresses. */
  readonly size: number;
  /** Stable digest of the segments; changes whenever the set of usable addresses changes. */
  readonly hash: string;
}

/** `first+count,…`: the hashed form of a layout and the one stored beside the pool's state. */
const segmentsText = (family: Family, segments: readonly Segment[]): string =>
  segments.map(s => `${formatValue(family, s.first)}+${s.count}`).join(',');

/** Builds a layout from sorted, disjoint usable ranges. */
export const toLayout = (family: Family, usable: readonly IpRange[]): Layout => {
  let offset = 0;
  const segments = usable.map(r => {
    const count = Number(r.last - r.first + 1n);
    const s = { first: r.first, count, offset };
    offset += count;
    return s;
  });
  const canonical = segmentsText(family, segments);
  const hash = createHash('sha256').update(`v1|${family}|${canonical}`).digest('hex').slice(0, 16);
  return { family, segments, size: offset, hash };
};

/**
 * Binary search over the sorted segments: `where(s)` is negative when the wanted point lies
 * before segment s, positive after it, zero inside it.
 */
const findSegment = (layout: Layout, where: (s: Segment) => number): Segment | undefined => {
  const segs = layout.segments;
  let lo = 0;
  let hi = segs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = segs[mid];
    if (s === undefined) return undefined;
    const w = where(s);
    if (w < 0) hi = mid - 1;
    else if (w > 0) lo = mid + 1;
    else return s;
  }
  return undefined;
};

/** The address at `index`, or undefined when the index is outside the layout. */
export const indexToValue = (layout: Layout, index: number): bigint | undefined => {
  if (!Number.isInteger(index) || index < 0 || index >= layout.size) return undefined;
  const s = findSegment(layout, g => (index < g.offset ? -1 : index >= g.offset + g.count ? 1 : 0));
  return s === undefined ? undefined : s.first + BigInt(index - s.offset);
};

export const indexToIp = (layout: Layout, index: number): string | undefined => {
  const v = indexToValue(layout, index);
  return v === undefined ? undefined : formatValue(layout.family, v);
};

/** The index of an address value, or undefined when it is not allocatable in this layout. */
export const valueToIndex = (layout: Layout, value: bigint): number | undefined => {
  const s = findSegment(layout, g =>
    value < g.first ? -1 : value >= g.first + BigInt(g.count) ? 1 : 0,
  );
  return s === undefined ? undefined : s.offset + Number(value - s.first);
};

/** The index of an address string, or undefined when it is not an allocatable address here. */
export const ipToIndex = (layout: Layout, text: string): number | undefined => {
  const ip = parseIp(text);
  if (ip === undefined || ip.family !== layout.family) return undefined;
  return valueToIndex(layout, ip.value);
};

/** Text form of the segments, kept beside the pool's state so a later layout can be mapped. */
export const serializeSegments = (layout: Layout): string =>
  segmentsText(layout.family, layout.segments);

/** Parses `serializeSegments` output back into a layout; undefined when malformed. */
export const parseSegments = (text: string): Layout | undefined => {
  const ranges: IpRange[] = [];
  let family: Family | undefined;
  for (const part of text.split(',')) {
    const [ipText, countText] = part.split('+');
    const ip = parseIp(ipText ?? '');
    const count = Number(countText);
    if (ip === undefined || !Number.isSafeInteger(count) || count <= 0) return undefined;
    if (family !== undefined && family !== ip.family) return undefined;
    family = ip.family;
    ranges.push({ family: ip.family, first: ip.value, last: ip.value + BigInt(count - 1) });
  }
  return family === undefined ? undefined : toLayout(family, ranges);
};

/** A run of consecutive indexes whose addresses are allocatable in two layouts. */
export type IndexRun = readonly [oldFirst: number, count: number, newFirst: number];

/**
 * How indexes of layout `from` map to layout `to`: the runs where their segments overlap, sorted
 * by old index. An old index in no run is an address `to` leaves out.
 */
export const indexRuns = (from: Layout, to: Layout): IndexRun[] => {
  const runs: IndexRun[] = [];
  let a = 0;
  let b = 0;
  while (a < from.segments.length && b < to.segments.length) {
    const s = from.segments[a];
    const t = to.segments[b];
    if (s === undefined || t === undefined) break;
    const sLast = s.first + BigInt(s.count - 1);
    const tLast = t.first + BigInt(t.count - 1);
    const lo = s.first > t.first ? s.first : t.first;
    const hi = sLast < tLast ? sLast : tLast;
    if (lo <= hi) {
      runs.push([
        s.offset + Number(lo - s.first),
        Number(hi - lo) + 1,
        t.offset + Number(lo - t.first),
      ]);
    }
    if (sLast < tLast) a++;
    else b++;
  }
  return runs;
};
