/**
 * Redis key builder (BullMQ `QueueKeys.toKey`). The pool's epoch is a field of its meta hash, so
 * allocation checks it in the same read as the layout. Every key of a pool carries the `{<pool>}` hash
 * tag so each script touches one cluster slot; every key reaches Lua through KEYS[].
 */

/**
 * The keys of a pool's address state, in the KEYS[] order of the scripts that take them all
 * (allocate, init, relayout). Init clears them together; relayout rewrites them together.
 */
export const STATE_KEY_TYPES = [
  'meta',
  'dirty',
  'released',
  'leases',
  'byip',
  'pending',
  'sticky',
  'resbyip',
] as const;

/**
 * Every key of a pool: the address state, `policy` (StatefulSet name -> retention policy JSON)
 * and `report` (the last reconcile's findings, JSON), which are kept apart from it: init and
 * relayout leave them alone, so they outlive a rebuild.
 */
export const KEY_TYPES = [...STATE_KEY_TYPES, 'policy', 'report'] as const;
export type KeyType = (typeof KEY_TYPES)[number];
export type PoolKeys = Readonly<Record<KeyType, string>>;

export const toKey = (pool: string, type: KeyType): string => `podlease:{${pool}}:${type}`;

export const poolKeys = (pool: string): PoolKeys =>
  Object.freeze(
    Object.fromEntries(KEY_TYPES.map(t => [t, toKey(pool, t)])) as Record<KeyType, string>,
  );
