import { randomUUID } from 'node:crypto';
import { toPoolSet, type Pool } from '../../src/pool/pools-file.js';

/** A pool with a fresh name (test isolation: `test-<uuid>`), from one pools-file entry. */
export const testPool = (entry: Record<string, unknown>): Pool => {
  const name = `test-${randomUUID().slice(0, 18)}`;
  const set = toPoolSet({ pools: [{ name, ...entry }] });
  const pool = set.pools.get(name);
  if (pool === undefined) throw new Error('pool missing');
  return pool;
};

/** The same pool name with another configuration (relayout tests). */
export const reconfigure = (pool: Pool, entry: Record<string, unknown>): Pool => {
  const set = toPoolSet({ pools: [{ name: pool.name, ...entry }] });
  const next = set.pools.get(pool.name);
  if (next === undefined) throw new Error('pool missing');
  return next;
};
