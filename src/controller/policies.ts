/**
 * The retention policies (`when-scaled`, `when-deleted`) of the StatefulSets the controller has
 * seen, kept in the store so they outlive the StatefulSet and a controller restart: a
 * StatefulSet deleted while podlease was down still gets its `when-deleted` applied. Written to
 * every pool (a policy is small and pools are few), read from the first that has it.
 */
import type { Logger } from '../log/logger.js';
import type { PoolSet } from '../pool/pools-file.js';
import type { LeaseStore } from '../pool/store.js';
import type { RetentionPolicy } from '../pool/store.js';

export class PolicyBook {
  private readonly store: LeaseStore;
  private readonly pools: PoolSet;
  private readonly log: Logger;
  /** What this process wrote or read, so repeated lookups cost nothing. */
  private readonly known = new Map<string, RetentionPolicy>();

  constructor(store: LeaseStore, pools: PoolSet, log: Logger) {
    this.store = store;
    this.pools = pools;
    this.log = log;
  }

  async set(statefulSet: string, policy: RetentionPolicy): Promise<void> {
    const had = this.known.get(statefulSet);
    if (had?.whenDeleted === policy.whenDeleted && had.whenScaled === policy.whenScaled) return;
    for (const pool of this.pools.pools.values())
      await this.store.setPolicy(pool, statefulSet, policy);
    this.known.set(statefulSet, policy);
    this.log.debug({ statefulSet, ...policy }, 'retention policy recorded');
  }

  async get(statefulSet: string): Promise<RetentionPolicy | undefined> {
    const cached = this.known.get(statefulSet);
    if (cached !== undefined) return cached;
    const all = await this.all();
    return all.get(statefulSet);
  }

  async all(): Promise<ReadonlyMap<string, RetentionPolicy>> {
    const merged = new Map<string, RetentionPolicy>();
    for (const pool of this.pools.pools.values()) {
      for (const [k, v] of await this.store.policies(pool)) if (!merged.has(k)) merged.set(k, v);
    }
    for (const [k, v] of merged) this.known.set(k, v);
    return merged;
  }
}
