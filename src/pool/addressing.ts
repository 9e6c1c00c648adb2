/**
 * Pool-level address checks shared by both stores: turning a requested address into an index of
 * the pool's layout, or a NotInPoolError that says why it is not allocatable.
 */
import { cidrContains, cidrLast, formatCidr, parseIp, parseRange } from '../ip/address.js';
import type { Pool } from './pools-file.js';
import { NotInPoolError } from './errors.js';
import { indexToIp, ipToIndex } from './layout.js';

/** Why `text` is not an allocatable address of the pool, in words a user can act on. */
export const whyNotAllocatable = (pool: Pool, text: string): string => {
  const ip = parseIp(text);
  if (ip === undefined) return 'it is not an IP address';
  if (ip.family !== pool.family) return `it is IPv${ip.family} and the pool is IPv${pool.family}`;
  if (!cidrContains(pool.cidr, ip.family, ip.value))
    return `it is outside ${formatCidr(pool.cidr)}`;
  return (
    specialAddress(pool, ip.value) ?? `it is outside the pool's ranges (${pool.ranges.join(', ')})`
  );
};

/** Why an address inside the cidr is never handed out, if it is one of those. */
const specialAddress = (pool: Pool, value: bigint): string | undefined => {
  const { cidr } = pool;
  const hasNetwork = pool.family === 6 ? cidr.prefix < 128 : cidr.prefix < 31;
  if (pool.gateway !== undefined && parseIp(pool.gateway)?.value === value) {
    return 'it is the pool gateway';
  }
  if (hasNetwork && value === cidr.network) return 'it is the network address';
  if (pool.family === 4 && hasNetwork && value === cidrLast(cidr))
    return 'it is the broadcast address';
  if (pool.exclude.some(e => inRange(e, value))) return 'it is excluded by the pool';
  return undefined;
};

const inRange = (text: string, value: bigint): boolean => {
  const r = parseRange(text);
  return r !== undefined && value >= r.first && value <= r.last;
};

/** The layout index of `ip`, or a NotInPoolError naming the reason. */
export const indexOf = (pool: Pool, ip: string): number => {
  const index = ipToIndex(pool.layout, ip);
  if (index === undefined) throw new NotInPoolError(pool.name, ip, whyNotAllocatable(pool, ip));
  return index;
};

/** The address at `index`; throws on a corrupt index (a store bug, never user input). */
export const ipOf = (pool: Pool, index: number): string => {
  const ip = indexToIp(pool.layout, index);
  if (ip === undefined) {
    throw new Error(
      `pool "${pool.name}": index ${index} is outside its ${pool.layout.size} addresses`,
    );
  }
  return ip;
};
