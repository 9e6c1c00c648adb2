/**
 * Pools file loading and validation (docs/design.md §2). Parse once, validate fully, canonicalise,
 * freeze. Every problem is reported at once, each naming the pool and the field.
 *
 * The structure (fields, types, the shape of names, cidrs, addresses and ranges) is checked
 * against `pools.schema.json`, the one JSON Schema of the pools file, which the Helm chart's
 * values.schema.json embeds (`npm run chart:schema`; a unit test checks they agree). What a
 * schema cannot say is checked here: ranges, exclude and gateway inside the cidr, overlaps,
 * one default per family, sizes.
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
import poolsSchemaJson from './pools.schema.json' with { type: 'json' };
import { resolveRef, validateSchema, type Schema, type SchemaIssue } from './schema.js';

/** Largest allocatable address count of one pool: one bit per address, 2 MiB of bitmap. */
export const MAX_POOL_ADDRESSES = 2 ** 24;

/** The JSON Schema of a pools file (src/pool/pools.schema.json). */
export const POOLS_SCHEMA: Schema = poolsSchemaJson as Schema;

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

const POOL_SCHEMA = resolveRef(POOLS_SCHEMA, '#/$defs/pool');
const POOL_FIELDS = Object.keys(POOL_SCHEMA.properties ?? {});
const DNS_LABEL = new RegExp(POOL_SCHEMA.properties?.name?.pattern ?? '^$', 'u');
const NOT_A_POOLS_FILE = 'the document must have a non-empty "pools:" list';

type Issues = string[];

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The strings of a list field; the schema has reported anything else. */
const stringList = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];

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
  for (const text of stringList(raw)) {
    const r = parseRange(text);
    if (r === undefined) {
      // the schema checks the shape; a backwards "b-a" (or a mixed family) ends up here
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
  if (typeof raw !== 'string') return undefined; // the schema has reported it
  const gw = parseIp(raw);
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

const parseNamespaces = (raw: unknown): string[] => (raw === undefined ? ['*'] : stringList(raw));

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

/** `pool "a"` when the pool has a valid name, else `pools[3]`. */
const poolWhere = (raw: unknown, index: number): string =>
  isRecord(raw) && typeof raw.name === 'string' && DNS_LABEL.test(raw.name)
    ? `pool "${raw.name}"`
    : `pools[${index}]`;

const fieldSchema = (field: string): Schema | undefined => {
  const sub = POOL_SCHEMA.properties?.[field];
  return sub?.$ref === undefined ? sub : resolveRef(POOLS_SCHEMA, sub.$ref);
};

/** One schema issue in the words of this file: pool and field, what the value should be. */
const describeIssue = (doc: Record<string, unknown>, issue: SchemaIssue): string => {
  const [top, index, field] = issue.path;
  if (top !== 'pools' || typeof index !== 'number') return NOT_A_POOLS_FILE;
  const pools = doc.pools as unknown[];
  const where = `${poolWhere(pools[index], index)}${field === undefined ? '' : `.${String(field)}`}`;
  const expected = issue.schema.errorMessage ?? 'valid';
  switch (issue.keyword) {
    case 'required': {
      const what = fieldSchema(issue.property)?.errorMessage;
      return `${where}.${issue.property}: missing${what === undefined ? '' : `; it must be ${what}`}`;
    }
    case 'additionalProperties':
      return `${where}: unknown field "${issue.property}" (known: ${POOL_FIELDS.join(', ')})`;
    case 'pattern':
      return `${where}: ${JSON.stringify(issue.value)} is not ${expected}`;
    default:
      return `${where}: must be ${expected}`;
  }
};

const parsePool = (raw: unknown, index: number, issues: Issues): Draft | undefined => {
  if (!isRecord(raw)) return undefined;
  const where = poolWhere(raw, index);
  const cidr = typeof raw.cidr === 'string' ? parseCidr(raw.cidr) : undefined;
  if (cidr === undefined) {
    if (typeof raw.cidr === 'string' && !issues.some(i => i.startsWith(`${where}.cidr:`))) {
      issues.push(`${where}.cidr: "${raw.cidr}" is not a cidr such as 10.244.0.0/16 or fd00::/64`);
    }
    return undefined;
  }
  const partial = {
    name: String(raw.name),
    family: cidr.family,
    cidr,
    ranges: parseRangesField(raw.ranges, `${where}.ranges`, cidr, issues),
    exclude: parseRangesField(raw.exclude, `${where}.exclude`, cidr, issues),
    gateway: parseGateway(raw.gateway, `${where}.gateway`, cidr, issues),
    namespaces: parseNamespaces(raw.namespaces),
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
  const structural = validateSchema(POOLS_SCHEMA, doc);
  const list = isRecord(doc) ? doc.pools : undefined;
  if (!isRecord(doc) || !Array.isArray(list) || list.length === 0) {
    throw new ConfigError(source, [NOT_A_POOLS_FILE]);
  }
  const issues: Issues = structural.map(i => describeIssue(doc, i));
  const drafts = list
    .map((raw, i) => parsePool(raw, i, issues))
    .filter((d): d is Draft => d !== undefined);
  checkAcrossPools(drafts, issues);
  if (issues.length > 0) throw new ConfigError(source, [...new Set(issues)]);
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
