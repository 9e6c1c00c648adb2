/**
 * The admission decision for a pod CREATE, pure (docs/design.md §3): which pools, which exact
 * addresses, which sticky key. No I/O: the store is called by admit.ts with the plan this returns.
 * Problems are thrown as typed errors (errors.ts, pool/errors.ts) and turned into denials at the
 * edge (respond.ts).
 */
import type { Family } from '../ip/address.js';
import {
  IP_LIST_MAX_ENTRIES,
  OWNED_ANNOTATION_KEYS,
  STATIC_IP_MAX_ENTRIES,
  USER_ANNOTATIONS,
} from '../pool/annotations.js';
import { namespaceAllowed, type Pool, type PoolSet } from '../pool/pools-file.js';
import { UnknownPoolError } from '../pool/errors.js';
import { whyNotAllocatable } from '../pool/addressing.js';
import { ipToIndex, valueToIndex } from '../pool/layout.js';
import type { PodRef } from '../pool/store.js';
import { quote } from '../text/quote.js';
import { parseAddressList, type ListedAddress, type ListLimit } from './address-list.js';
import {
  AddressOutsidePoolError,
  BadAnnotationError,
  NamespaceNotAllowedError,
  StatefulSetCreatorError,
} from './errors.js';
import { creatorAllowed, statefulSetIdentity, stickyKeyOf } from './statefulset.js';
import type { PodView, UserInfo } from './types.js';

/** One lease to take: one per family of a dual-stack pod, IPv4 first. */
export interface Claim {
  readonly pool: Pool;
  /** Exact address (static-ip or the ordinal's ip-list entry), canonical. */
  readonly ip?: string | undefined;
  readonly stickyKey?: string | undefined;
}

export type SkipReason = 'ignore' | 'host-network';

export type Plan =
  | {
      readonly kind: 'skip';
      readonly reason: SkipReason;
      /** Owned annotations that arrived with the pod: removed (podlease wrote none of them). */
      readonly discard: readonly string[];
    }
  | {
      readonly kind: 'lease';
      readonly claims: readonly Claim[];
      readonly pod: PodRef;
      /** Value for `podlease.io/pool` when the pod did not name one (the pools used). */
      readonly fillPool: string | undefined;
      readonly discard: readonly string[];
    };

export interface DecisionInput {
  readonly namespace: string;
  readonly pod: PodView;
  readonly namespaceAnnotations: Readonly<Record<string, string>> | undefined;
  readonly pools: PoolSet;
  /** Who sent the CREATE (`request.userInfo`): sticky pods must come from a StatefulSet creator. */
  readonly userInfo: UserInfo;
  /** The usernames that may create StatefulSet pods (`--statefulset-creators`). */
  readonly statefulSetCreators: readonly string[];
}

const A = USER_ANNOTATIONS;

const knownPools = (pools: PoolSet): string[] => [...pools.pools.keys()];

const describePool = (p: Pool): string => `"${p.name}" (${p.cidrText})`;

const trueFalse = (annotations: Readonly<Record<string, string>>, key: string): boolean => {
  const value = annotations[key];
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  throw new BadAnnotationError(key, `${key}: ${quote(value)} is not "true" or "false"`);
};

const checkEnum = (
  annotations: Readonly<Record<string, string>>,
  key: string,
  allowed: readonly string[],
): void => {
  const value = annotations[key];
  if (value !== undefined && !allowed.includes(value)) {
    throw new BadAnnotationError(
      key,
      `${key}: ${quote(value)} is not one of ${allowed.join(', ')}`,
    );
  }
};

const splitList = (value: string): string[] => value.split(',').map(s => s.trim());

const defaultPools = (input: DecisionInput): Pool[] => {
  const defaults = [input.pools.defaults[4], input.pools.defaults[6]].filter(
    (p): p is Pool => p !== undefined,
  );
  if (defaults.length === 0) {
    throw new BadAnnotationError(
      A.pool,
      `no pool for this pod: it has no ${A.pool} annotation, its namespace has none, and no pool ` +
        `is a default; set ${A.pool} to one of: ${knownPools(input.pools).join(', ')}`,
    );
  }
  return defaults;
};

/** `pool` or `v4pool,v6pool` to pools, IPv4 first. */
const namedPools = (input: DecisionInput, text: string, where: string): Pool[] => {
  // At most one comma, checked before splitting: the value may be arbitrarily long.
  const comma = text.indexOf(',');
  const names = comma !== -1 && text.includes(',', comma + 1) ? [] : splitList(text);
  if (names.length === 0 || names.some(n => n === '')) {
    throw new BadAnnotationError(
      A.pool,
      `${where}: ${quote(text)} must be one pool name or two (IPv4,IPv6) separated by a comma`,
    );
  }
  const pools = names.map(name => {
    const pool = input.pools.pools.get(name);
    if (pool === undefined) throw new UnknownPoolError(name, knownPools(input.pools));
    return pool;
  });
  const [first, second] = pools;
  if (first !== undefined && second !== undefined && first.family === second.family) {
    throw new BadAnnotationError(
      A.pool,
      `${where}: ${quote(text)} names two IPv${first.family} pools; a dual-stack pod ` +
        'takes one IPv4 and one IPv6 pool',
    );
  }
  return pools.sort((a, b) => a.family - b.family);
};

/** The pools named by the pod, else by its namespace, else the default of each family. */
const resolvePools = (
  input: DecisionInput,
  own: Readonly<Record<string, string>>,
): { pools: Pool[]; named: boolean } => {
  const fromPod = own[A.pool];
  if (fromPod !== undefined) return { pools: namedPools(input, fromPod, A.pool), named: true };
  const fromNamespace = input.namespaceAnnotations?.[A.pool];
  if (fromNamespace !== undefined) {
    const where = `${A.pool} of namespace ${input.namespace}`;
    return { pools: namedPools(input, fromNamespace, where), named: false };
  }
  return { pools: defaultPools(input), named: false };
};

const poolContaining = (pools: PoolSet, ip: string): Pool | undefined =>
  [...pools.pools.values()].find(p => ipToIndex(p.layout, ip) !== undefined);

const IP_LIST_LIMIT: ListLimit = {
  maxEntries: IP_LIST_MAX_ENTRIES,
  why: 'one address per StatefulSet ordinal and family',
};

const STATIC_IP_LIMIT: ListLimit = {
  maxEntries: STATIC_IP_MAX_ENTRIES,
  why: 'one address per family, IPv4,IPv6',
};

const checkInPool = (key: string, listed: ListedAddress, pool: Pool, pools: PoolSet): void => {
  if (
    listed.ip.family === pool.family &&
    valueToIndex(pool.layout, listed.ip.value) !== undefined
  ) {
    return;
  }
  const ip = listed.text;
  const other = poolContaining(pools, ip);
  const why = whyNotAllocatable(pool, ip);
  const hint =
    other !== undefined
      ? `; it belongs to pool "${other.name}": set ${A.pool}: ${other.name}`
      : '; pick an address inside the pool or leave the annotation out';
  throw new AddressOutsidePoolError(
    `${key}: ${ip} is not allocatable in pool ${describePool(pool)}: ${why}${hint}`,
  );
};

const familiesMatch = (
  key: string,
  byFamily: Map<Family, ListedAddress[]>,
  pools: readonly Pool[],
): void => {
  for (const family of byFamily.keys()) {
    if (!pools.some(p => p.family === family)) {
      throw new BadAnnotationError(
        key,
        `${key}: has an IPv${family} address but the pod's pool${pools.length > 1 ? 's are' : ' is'} ` +
          `${pools.map(describePool).join(', ')}; set ${A.pool} to an IPv${family} pool`,
      );
    }
  }
};

interface Addressing {
  readonly stickyKey: string | undefined;
  /** Exact address per family. */
  readonly exact: Map<Family, string>;
}

const staticAddresses = (
  input: DecisionInput,
  own: Readonly<Record<string, string>>,
  pools: readonly Pool[],
): Map<Family, string> => {
  const value = own[A.staticIp];
  const exact = new Map<Family, string>();
  if (value === undefined) return exact;
  const byFamily = parseAddressList(A.staticIp, value, STATIC_IP_LIMIT);
  familiesMatch(A.staticIp, byFamily, pools);
  for (const [family, list] of byFamily) {
    if (list.length > 1) {
      throw new BadAnnotationError(
        A.staticIp,
        `${A.staticIp}: more than one IPv${family} address (${list.map(l => l.text).join(', ')})`,
      );
    }
    const pool = pools.find(p => p.family === family);
    const listed = list[0];
    if (pool === undefined || listed === undefined) continue;
    checkInPool(A.staticIp, listed, pool, input.pools);
    exact.set(family, listed.text);
  }
  return exact;
};

/** The sticky key of a pod that proves its StatefulSet identity (statefulset.ts), else throws. */
const stickyKeyFor = (
  input: DecisionInput,
  own: Readonly<Record<string, string>>,
): { key: string; ordinal: number } | undefined => {
  const hasList = own[A.ipList] !== undefined;
  const sticky = trueFalse(own, A.sticky);
  if (!sticky && !hasList) return undefined;
  const which = hasList ? A.ipList : A.sticky;
  const id = statefulSetIdentity(input.pod);
  if (!id.ok && id.check === 'owner') {
    throw new BadAnnotationError(
      which,
      `${which} applies to StatefulSet pods only, and this pod is not one: ${id.reason}; remove the ` +
        `annotation, or use ${A.staticIp} for one pod's fixed address`,
    );
  }
  if (!id.ok) {
    throw new BadAnnotationError(
      which,
      `${which}: ${id.reason}; a sticky address belongs to a StatefulSet's own pods only`,
    );
  }
  const username = input.userInfo.username ?? '';
  if (!creatorAllowed(username, input.statefulSetCreators)) {
    throw new StatefulSetCreatorError(
      which,
      JSON.stringify(input.pod.name ?? ''),
      username,
      input.statefulSetCreators,
    );
  }
  return { key: stickyKeyOf(input.namespace, id.identity), ordinal: id.identity.ordinal };
};

const listedAddresses = (
  input: DecisionInput,
  own: Readonly<Record<string, string>>,
  pools: readonly Pool[],
  ordinal: number,
): Map<Family, string> => {
  const value = own[A.ipList];
  const exact = new Map<Family, string>();
  if (value === undefined) return exact;
  if (own[A.staticIp] !== undefined) {
    throw new BadAnnotationError(
      A.ipList,
      `${A.ipList} and ${A.staticIp} are both set; keep one of them`,
    );
  }
  const byFamily = parseAddressList(A.ipList, value, IP_LIST_LIMIT);
  familiesMatch(A.ipList, byFamily, pools);
  for (const [family, list] of byFamily) {
    const pool = pools.find(p => p.family === family);
    if (pool === undefined) continue;
    for (const listed of list) checkInPool(A.ipList, listed, pool, input.pools);
    const ip = list[ordinal]?.text;
    if (ip === undefined) {
      throw new BadAnnotationError(
        A.ipList,
        `${A.ipList} has ${list.length} IPv${family} address${list.length === 1 ? '' : 'es'}, so ordinal ` +
          `${ordinal} has none; add addresses to the list or scale the StatefulSet to at most ${list.length}`,
      );
    }
    exact.set(family, ip);
  }
  return exact;
};

const addressing = (
  input: DecisionInput,
  own: Readonly<Record<string, string>>,
  pools: readonly Pool[],
): Addressing => {
  checkEnum(own, A.whenScaled, ['Retain', 'Delete']);
  checkEnum(own, A.whenDeleted, ['Delete', 'Retain']);
  const sticky = stickyKeyFor(input, own);
  const listed =
    sticky === undefined
      ? new Map<Family, string>()
      : listedAddresses(input, own, pools, sticky.ordinal);
  const exact = listed.size > 0 ? listed : staticAddresses(input, own, pools);
  return { stickyKey: sticky?.key, exact };
};

/** Decides what a pod CREATE needs. Throws a typed error for every denial. */
export const decide = (input: DecisionInput): Plan => {
  const own = input.pod.annotations ?? {};
  const discard = OWNED_ANNOTATION_KEYS.filter(k => k in own);
  if (trueFalse(own, A.ignore)) return { kind: 'skip', reason: 'ignore', discard };
  if (input.pod.hostNetwork) return { kind: 'skip', reason: 'host-network', discard };
  const { pools, named } = resolvePools(input, own);
  for (const pool of pools) {
    if (!namespaceAllowed(pool, input.namespace)) {
      throw new NamespaceNotAllowedError(pool.name, input.namespace, pool.namespaces);
    }
  }
  const { stickyKey, exact } = addressing(input, own, pools);
  const claims = pools.map(pool => ({ pool, ip: exact.get(pool.family), stickyKey }));
  return {
    kind: 'lease',
    claims,
    pod: { namespace: input.namespace, name: input.pod.name, generateName: input.pod.generateName },
    fillPool: named ? undefined : pools.map(p => p.name).join(','),
    discard,
  };
};
