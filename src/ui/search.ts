/**
 * The pool map's search box (pure): an address finds its cell whatever its state; any other text
 * finds the leases and reservations whose pod, namespace, lease id, sticky key or address
 * contains it. Answered from the snapshot the page was drawn from.
 */
import { formatIp, parseIp } from '../ip/address.js';
import { whyNotAllocatable } from '../pool/addressing.js';
import { ipToIndex } from '../pool/layout.js';
import type { Pool } from '../pool/pools-file.js';
import type { LeaseRecord, PoolSnapshot, Reservation } from '../pool/store.js';
import { CELL, Grid, STATE_WORDS } from './map.js';

export interface SearchHit {
  readonly ip: string;
  /** The cell drawing it, when it is in the drawn space. */
  readonly cell: number | undefined;
  readonly state: string;
  readonly namespace?: string | undefined;
  readonly pod?: string | undefined;
  readonly leaseId?: string | undefined;
  readonly key?: string | undefined;
  readonly createdAt?: number | undefined;
}

export interface SearchResult {
  readonly query: string;
  readonly hits: readonly SearchHit[];
  /** Matches, listed or not. */
  readonly total: number;
}

export const SEARCH_LIMIT = 100;

const cellOfIp = (grid: Grid, ip: string): number | undefined => {
  const v = parseIp(ip);
  return v === undefined ? undefined : grid.cellOf(v.value);
};

/** What one address is: held (by whom), cooling, free, or why it is not allocatable. */
const addressHit = (pool: Pool, snap: PoolSnapshot, ip: string): SearchHit => {
  const cell = cellOfIp(new Grid(pool), ip);
  const lease = snap.leases.find(l => l.ip === ip);
  const reservation = snap.reservations.find(r => r.ip === ip);
  if (lease !== undefined) return leaseHit(ip, cell, lease, reservation);
  if (reservation !== undefined) {
    return {
      ip,
      cell,
      state: STATE_WORDS[CELL.reserved] ?? '',
      namespace: reservation.key.split('/')[0],
      key: reservation.key,
    };
  }
  if (snap.cooling.some(c => c.ip === ip)) {
    return { ip, cell, state: STATE_WORDS[CELL.cooling] ?? '' };
  }
  if (ipToIndex(pool.layout, ip) !== undefined) return { ip, cell, state: 'free' };
  return { ip, cell, state: `not allocatable: ${whyNotAllocatable(pool, ip)}` };
};

const leaseHit = (
  ip: string,
  cell: number | undefined,
  lease: LeaseRecord,
  reservation: Reservation | undefined,
): SearchHit => ({
  ip,
  cell,
  state: reservation === undefined ? lease.state : `${lease.state}, sticky reservation`,
  namespace: lease.namespace,
  pod: lease.name ?? `${lease.generateName ?? ''}*`,
  leaseId: lease.id,
  key: lease.stickyKey ?? reservation?.key,
  createdAt: lease.createdAt,
});

/** Leases and reservations whose texts contain the query (`<namespace>/`: that namespace). */
const textSearch = (pool: Pool, snap: PoolSnapshot, q: string, limit: number): SearchResult => {
  const needle = q.toLowerCase();
  const exactNamespace = needle.endsWith('/') && !needle.slice(0, -1).includes('/');
  const has = (...texts: (string | undefined)[]): boolean =>
    exactNamespace
      ? texts[0]?.toLowerCase().startsWith(needle) === true
      : texts.some(t => t !== undefined && t.toLowerCase().includes(needle));
  const hits: SearchHit[] = [];
  let total = 0;
  const seen = new Set<string>();
  for (const l of snap.leases) {
    const pod = l.name ?? `${l.generateName ?? ''}*`;
    if (!has(`${l.namespace}/${pod}`, l.id, l.stickyKey, l.ip)) continue;
    total++;
    seen.add(l.ip);
    if (hits.length < limit) hits.push(addressHit(pool, snap, l.ip));
  }
  for (const r of snap.reservations) {
    if (seen.has(r.ip) || !has(r.key, r.ip)) continue;
    total++;
    if (hits.length < limit) hits.push(addressHit(pool, snap, r.ip));
  }
  return { query: q, hits, total };
};

/** Answers the search box from the snapshot the page was drawn from. */
export const searchPool = (
  pool: Pool,
  snap: PoolSnapshot,
  query: string,
  limit = SEARCH_LIMIT,
): SearchResult => {
  const q = query.trim();
  if (q === '') return { query: q, hits: [], total: 0 };
  const ip = parseIp(q);
  if (ip === undefined) return textSearch(pool, snap, q, limit);
  if (ip.family !== pool.family) {
    return {
      query: q,
      hits: [{ ip: formatIp(ip), cell: undefined, state: `not in this IPv${pool.family} pool` }],
      total: 1,
    };
  }
  return { query: q, hits: [addressHit(pool, snap, formatIp(ip))], total: 1 };
};
