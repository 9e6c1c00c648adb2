/**
 * Address math for IPv4 and IPv6 on `ip-address`: parsing and canonical formatting go through
 * the library, arithmetic is done on bigint offsets (host-local's `ip.NextIP`, Kubernetes'
 * `ipallocator` offset maps).
 */
import { Address4, Address6 } from 'ip-address';

export type Family = 4 | 6;

export interface Ip {
  readonly family: Family;
  /** The address as an unsigned integer. */
  readonly value: bigint;
}

export interface Cidr {
  readonly family: Family;
  /** Network address (canonicalised: host bits cleared). */
  readonly network: bigint;
  readonly prefix: number;
  /** Number of addresses in the prefix. */
  readonly size: bigint;
}

/** An inclusive address range. */
export interface IpRange {
  readonly family: Family;
  readonly first: bigint;
  readonly last: bigint;
}

export const bits = (family: Family): number => (family === 4 ? 32 : 128);

/** Parses one address, returning undefined when it is not a valid IPv4 or IPv6 address. */
export const parseIp = (text: string): Ip | undefined => {
  const s = text.trim();
  if (s.includes('/')) return undefined;
  if (Address4.isValid(s)) return { family: 4, value: new Address4(s).bigInt() };
  if (Address6.isValid(s) && !s.includes('%'))
    return { family: 6, value: new Address6(s).bigInt() };
  return undefined;
};

/** Canonical text form: dotted quad, or RFC 5952 for IPv6. */
export const formatIp = (ip: Ip): string =>
  ip.family === 4 ? formatV4(ip.value) : Address6.fromBigInt(ip.value).correctForm();

/** Dotted quad without the library round trip (this runs on every allocation). */
const formatV4 = (value: bigint): string => {
  const n = Number(value);
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
};

export const formatValue = (family: Family, value: bigint): string => formatIp({ family, value });

/** Canonicalises an address string, or returns undefined when it is not one. */
export const canonicalIp = (text: string): string | undefined => {
  const ip = parseIp(text);
  return ip === undefined ? undefined : formatIp(ip);
};

/** Parses `a.b.c.d/n` or `x::/n`; the network address is canonicalised (host bits cleared). */
export const parseCidr = (text: string): Cidr | undefined => {
  const [addr, len, extra] = text.trim().split('/');
  if (addr === undefined || len === undefined || extra !== undefined || !/^\d{1,3}$/.test(len)) {
    return undefined;
  }
  const ip = parseIp(addr);
  const prefix = Number(len);
  if (ip === undefined || prefix > bits(ip.family)) return undefined;
  const hostBits = BigInt(bits(ip.family) - prefix);
  const network = (ip.value >> hostBits) << hostBits;
  return { family: ip.family, network, prefix, size: 1n << hostBits };
};

export const formatCidr = (c: Cidr): string => `${formatValue(c.family, c.network)}/${c.prefix}`;

export const cidrLast = (c: Cidr): bigint => c.network + c.size - 1n;

export const cidrContains = (c: Cidr, family: Family, value: bigint): boolean =>
  family === c.family && value >= c.network && value <= cidrLast(c);

/**
 * Parses a range: `a-b` (inclusive), a cidr (its whole span) or a single address.
 * Returns undefined for malformed text, mixed families or `a > b`.
 */
export const parseRange = (text: string): IpRange | undefined => {
  const s = text.trim();
  if (s.includes('/')) {
    const c = parseCidr(s);
    return c && { family: c.family, first: c.network, last: cidrLast(c) };
  }
  const parts = s.split('-');
  if (parts.length > 2) return undefined;
  const first = parseIp(parts[0] ?? '');
  const last = parts.length === 2 ? parseIp(parts[1] ?? '') : first;
  if (first === undefined || last === undefined || first.family !== last.family) return undefined;
  if (first.value > last.value) return undefined;
  return { family: first.family, first: first.value, last: last.value };
};

export const formatRange = (r: IpRange): string =>
  r.first === r.last
    ? formatValue(r.family, r.first)
    : `${formatValue(r.family, r.first)}-${formatValue(r.family, r.last)}`;

export const rangeSize = (r: IpRange): bigint => r.last - r.first + 1n;

export const rangesOverlap = (a: IpRange, b: IpRange): boolean =>
  a.family === b.family && a.first <= b.last && b.first <= a.last;

/**
 * Subtracts `holes` from sorted, disjoint `spans` and returns the remaining sorted, disjoint
 * spans. Pure; cost is O((spans + holes) log holes).
 */
export const subtractRanges = (spans: readonly IpRange[], holes: readonly IpRange[]): IpRange[] => {
  const sortedHoles = [...holes].sort((a, b) =>
    a.first < b.first ? -1 : a.first > b.first ? 1 : 0,
  );
  const out: IpRange[] = [];
  for (const span of spans) {
    let cursor = span.first;
    for (const hole of sortedHoles) {
      if (hole.family !== span.family || hole.last < cursor || hole.first > span.last) continue;
      if (hole.first > cursor)
        out.push({ family: span.family, first: cursor, last: hole.first - 1n });
      cursor = hole.last + 1n;
      if (cursor > span.last) break;
    }
    if (cursor <= span.last) out.push({ family: span.family, first: cursor, last: span.last });
  }
  return out;
};

/** Merges overlapping or adjacent ranges of one family into sorted, disjoint ranges. */
export const mergeRanges = (ranges: readonly IpRange[]): IpRange[] => {
  const sorted = [...ranges].sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const out: IpRange[] = [];
  for (const r of sorted) {
    const prev = out[out.length - 1];
    if (prev !== undefined && r.first <= prev.last + 1n) {
      if (r.last > prev.last) out[out.length - 1] = { ...prev, last: r.last };
    } else {
      out.push(r);
    }
  }
  return out;
};
