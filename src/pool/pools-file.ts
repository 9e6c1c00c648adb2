/**
 * Pools file loading and validation (docs/design.md §2). Parse once, validate fully, canonicalise,
 * freeze. Every problem is reported at once, each naming the pool and the field.
 */
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../config/errors.js';
import {
  cidrContains,
  cidrLast,
  formatCidr,
  formatRange,
  formatValue,
  mergeRanges,
  parseCidr,
  parseIp,
  parseRange,
  rangeSize,
  rangesOverlap,
  subtractRanges,
  type Cidr,
  type Family,
  type IpRange,
} from '../ip/address.js';
import { toLayout, type Layout } from './layout.js';

/** Largest allocatable address count of one pool: one bit per address, 2 MiB of bitmap. */
export const MAX_POOL_ADDRESSES = 2 ** 24;

export interface Pool {
  readonly name: string;
  readonly family: Family;
  readonly cidr: Cidr;
  /** Canonical cidr text, as written into `podlease.io/cidr`. */
  readonly cidrText: string;
  /** Allocatable ranges as configured (canonical text). */
  readonly ranges: readonly string[];
  readonly exclude: readonly string[];
  /** Canonical gateway address, if any. */
  readonly gateway: string | undefined;
  readonly namespaces: readonly string[];
  readonly isDefault: boolean;
  /** The dense index space of usable addresses. */
  readonly layout: Layout;
}

export interface PoolSet {
  readonly pools: ReadonlyMap<string, Pool>;
  /** Default pool per family. */
  readonly defaults: { readonly 4?: Pool; readonly 6?: Pool };
}

/** The pool `podlease serve` uses when no pools file is given. */
export const DEV_POOLS_DOCUMENT = {
  pools: [{ name: 'default', cidr: '10.244.0.0/16', gateway: '10.244.0.1', default: true }],
};

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const NAMESPACE_GLOB = /^[a-z0-9*?]([-a-z0-9*?]{0,61}[a-z0-9*?])?$/;
const KNOWN_FIELDS = new Set([
  'name',
  'cidr',
  'ranges',
  'exclude',
  'gateway',
  'namespaces',
  'default',
]);

type Issues = string[];

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const stringList = (v: unknown, where: string, issues: Issues): string[] => {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every(x => typeof x === 'string')) {
    issues.push(`${where}: must be a list of strings`);
    return [];
  }
  return v;
};

interface Draft {
  name: string;
  family: Family;
  cidr: Cidr;
  usable: IpRange[];
  ranges: IpRange[];
  exclude: IpRange[];
  gateway: bigint | undefined;
  namespaces: string[];
  isDefault: boolean;
}

const parseRangesField = (raw: unknown, where: string, cidr: Cidr, issues: Issues): IpRange[] => {
  const out: IpRange[] = [];
  for (const text of stringList(raw, where, issues)) {
    const r = parseRange(text);
    if (r === undefined) {
      issues.push(`${where}: "${text}" is not an address, a cidr or a range "a-b" with a <= b`);
    } else if (r.family !== cidr.family || r.first < cidr.network || r.last > cidrLast(cidr)) {
      issues.push(`${where}: "${text}" is outside the pool's cidr ${formatCidr(cidr)}`);
    } else {
      out.push(r);
    }
  }
  return out;
};

/** The cidr's usable span: IPv4 leaves out network and broadcast (not for /31, /32); IPv6 the first. */
const wholeCidr = (cidr: Cidr): IpRange[] => {
  const last = cidrLast(cidr);
  if (cidr.family === 4 && cidr.prefix < 31) {
    return [{ family: 4, first: cidr.network + 1n, last: last - 1n }];
  }
  if (cidr.family === 6 && cidr.prefix < 128) {
    return [{ family: 6, first: cidr.network + 1n, last }];
  }
  return [{ family: cidr.family, first: cidr.network, last }];
};

/** Addresses a pool never hands out whatever its ranges say. */
const reserved = (cidr: Cidr): IpRange[] => {
  const last = cidrLast(cidr);
  const out: IpRange[] = [];
  if (cidr.family === 4 && cidr.prefix < 31) {
    out.push({ family: 4, first: cidr.network, last: cidr.network });
    out.push({ family: 4, first: last, last });
  } else if (cidr.family === 6 && cidr.prefix < 128) {
    out.push({ family: 6, first: cidr.network, last: cidr.network });
  }
  return out;
};

const checkRangesDisjoint = (ranges: IpRange[], where: string, issues: Issues): void => {
  const sorted = [...ranges].sort((a, b) => (a.first < b.first ? -1 : 1));
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1];
    const b = sorted[i];
    if (a !== undefined && b !== undefined && rangesOverlap(a, b)) {
      issues.push(`${where}: ranges ${formatRange(a)} and ${formatRange(b)} overlap`);
    }
  }
};

const parseGateway = (
  raw: unknown,
  where: string,
  cidr: Cidr,
  issues: Issues,
): bigint | undefined => {
  if (raw === undefined) return undefined;
  const gw = typeof raw === 'string' ? parseIp(raw) : undefined;
  if (gw === undefined) {
    issues.push(`${where}: ${JSON.stringify(raw)} is not an IP address`);
    return undefined;
  }
  if (!cidrContains(cidr, gw.family, gw.value)) {
    issues.push(
      `${where}: ${formatValue(gw.family, gw.value)} is outside the pool's cidr ${formatCidr(cidr)}`,
    );
    return undefined;
  }
  return gw.value;
};

const parseNamespaces = (raw: unknown, where: string, issues: Issues): string[] => {
  if (raw === undefined) return ['*'];
  const list = stringList(raw, where, issues);
  for (const ns of list) {
    if (!NAMESPACE_GLOB.test(ns)) {
      issues.push(
        `${where}: "${ns}" is not a namespace name or glob (letters, digits, -, * and ?)`,
      );
    }
  }
  return list;
};

const parseUsable = (draft: Omit<Draft, 'usable'>, where: string, issues: Issues): IpRange[] => {
  const { cidr, ranges } = draft;
  if (cidr.family === 6 && ranges.length === 0 && cidr.size - 1n > BigInt(MAX_POOL_ADDRESSES)) {
    issues.push(
      `${where}.ranges: IPv6 pool ${formatCidr(cidr)} is larger than ${MAX_POOL_ADDRESSES} addresses; ` +
        'name the allocatable ranges, e.g. ranges: ["fd00::100-fd00::ffff"]',
    );
    return [];
  }
  const base = ranges.length > 0 ? mergeRanges(ranges) : wholeCidr(cidr);
  const holes = [...reserved(cidr), ...draft.exclude];
  if (draft.gateway !== undefined) {
    holes.push({ family: cidr.family, first: draft.gateway, last: draft.gateway });
  }
  const usable = subtractRanges(base, holes);
  const total = usable.reduce((n, r) => n + rangeSize(r), 0n);
  if (total > BigInt(MAX_POOL_ADDRESSES)) {
    issues.push(
      `${where}: ${total} allocatable addresses is more than the limit of ${MAX_POOL_ADDRESSES} (2^24); ` +
        'split it into several pools or narrow its ranges',
    );
  } else if (total === 0n) {
    issues.push(`${where}: has no allocatable address left after ranges, gateway and exclude`);
  }
  return usable;
};

const parsePool = (raw: unknown, index: number, issues: Issues): Draft | undefined => {
  if (!isRecord(raw)) {
    issues.push(`pools[${index}]: must be a mapping with at least name and cidr`);
    return undefined;
  }
  const nameOk = typeof raw.name === 'string' && DNS_LABEL.test(raw.name);
  const where = nameOk ? `pool "${String(raw.name)}"` : `pools[${index}]`;
  if (!nameOk) {
    issues.push(
      `${where}.name: ${JSON.stringify(raw.name)} is not a DNS label (a-z, 0-9, -; at most 63)`,
    );
  }
  for (const key of Object.keys(raw)) {
    if (!KNOWN_FIELDS.has(key)) {
      issues.push(`${where}: unknown field "${key}" (known: ${[...KNOWN_FIELDS].join(', ')})`);
    }
  }
  const cidr = typeof raw.cidr === 'string' ? parseCidr(raw.cidr) : undefined;
  if (cidr === undefined) {
    issues.push(
      `${where}.cidr: ${JSON.stringify(raw.cidr)} is not a cidr such as 10.244.0.0/16 or fd00::/64`,
    );
    return undefined;
  }
  if (raw.default !== undefined && typeof raw.default !== 'boolean') {
    issues.push(`${where}.default: must be true or false`);
  }
  const partial = {
    name: String(raw.name),
    family: cidr.family,
    cidr,
    ranges: parseRangesField(raw.ranges, `${where}.ranges`, cidr, issues),
    exclude: parseRangesField(raw.exclude, `${where}.exclude`, cidr, issues),
    gateway: parseGateway(raw.gateway, `${where}.gateway`, cidr, issues),
    namespaces: parseNamespaces(raw.namespaces, `${where}.namespaces`, issues),
    isDefault: raw.default === true,
  };
  checkRangesDisjoint(partial.ranges, `${where}.ranges`, issues);
  return { ...partial, usable: parseUsable(partial, where, issues) };
};

const checkAcrossPools = (drafts: Draft[], issues: Issues): void => {
  const names = new Set<string>();
  const defaults = new Map<Family, string>();
  for (const d of drafts) {
    if (names.has(d.name)) issues.push(`pool "${d.name}": the name is used by more than one pool`);
    names.add(d.name);
    if (d.isDefault) {
      const other = defaults.get(d.family);
      if (other !== undefined) {
        issues.push(
          `pool "${d.name}".default: pool "${other}" is already the default IPv${d.family} pool; ` +
            'at most one default per family',
        );
      } else {
        defaults.set(d.family, d.name);
      }
    }
  }
  for (let i = 0; i < drafts.length; i++) {
    for (let j = i + 1; j < drafts.length; j++) {
      const a = drafts[i];
      const b = drafts[j];
      if (a === undefined || b === undefined) continue;
      const clash = a.usable.find(ra => b.usable.some(rb => rangesOverlap(ra, rb)));
      if (clash !== undefined) {
        issues.push(
          `pool "${b.name}": its addresses overlap pool "${a.name}" (around ${formatRange(clash)}); ` +
            'pools must not share an allocatable address',
        );
      }
    }
  }
};

const freeze = (d: Draft): Pool =>
  Object.freeze({
    name: d.name,
    family: d.family,
    cidr: d.cidr,
    cidrText: formatCidr(d.cidr),
    ranges: Object.freeze(d.ranges.map(formatRange)),
    exclude: Object.freeze(d.exclude.map(formatRange)),
    gateway: d.gateway === undefined ? undefined : formatValue(d.family, d.gateway),
    namespaces: Object.freeze(d.namespaces),
    isDefault: d.isDefault,
    layout: toLayout(d.family, d.usable),
  });

/** Validates a parsed pools document. Throws ConfigError listing every problem. */
export const toPoolSet = (doc: unknown, source = 'pools'): PoolSet => {
  const issues: Issues = [];
  const list = isRecord(doc) ? doc.pools : undefined;
  if (!Array.isArray(list) || list.length === 0) {
    throw new ConfigError(source, ['the document must have a non-empty "pools:" list']);
  }
  const drafts = list
    .map((raw, i) => parsePool(raw, i, issues))
    .filter((d): d is Draft => d !== undefined);
  checkAcrossPools(drafts, issues);
  if (issues.length > 0) throw new ConfigError(source, issues);
  const pools = new Map(drafts.map(d => [d.name, freeze(d)] as const));
  const defaults: { 4?: Pool; 6?: Pool } = {};
  for (const p of pools.values()) if (p.isDefault) defaults[p.family] = p;
  return Object.freeze({ pools, defaults: Object.freeze(defaults) });
};

/** Parses a pools file's text (YAML or JSON). */
export const parsePoolsText = (text: string, source: string): PoolSet => {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(source, [`not valid YAML or JSON: ${(err as Error).message}`], {
      cause: err,
    });
  }
  return toPoolSet(doc, source);
};

/** True when a namespace glob list (`*`, `?`) admits the namespace. */
export const namespaceAllowed = (pool: Pool, namespace: string): boolean =>
  pool.namespaces.some(glob => globToRegExp(glob).test(namespace));

const globCache = new Map<string, RegExp>();
const globToRegExp = (glob: string): RegExp => {
  let re = globCache.get(glob);
  if (re === undefined) {
    const body = glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.');
    re = new RegExp(`^${body}$`);
    globCache.set(glob, re);
  }
  return re;
};
