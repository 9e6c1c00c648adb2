/** Shared set-up of the webhook unit tests: pools, the memory store, deps. */
import { DEFAULTS, type WebhookConfig } from '../../../src/config/config.js';
import { silentLogger } from '../../../src/log/logger.js';
import { toPoolSet, type PoolSet } from '../../../src/pool/pools-file.js';
import { MemoryLeaseStore } from '../../../src/pool/memory-store.js';
import type { LeaseStore } from '../../../src/pool/store.js';
import type { WebhookDeps } from '../../../src/webhook/handlers.js';
import { NO_NAMESPACES, type NamespaceLookup } from '../../../src/webhook/namespaces.js';
import type { AdmissionReview, PatchOperation } from '../../../src/webhook/types.js';

export const TEST_POOLS = {
  pools: [
    { name: 'default', cidr: '10.244.0.0/16', gateway: '10.244.0.1', default: true },
    { name: 'v6', cidr: 'fd00:10::/64', ranges: ['fd00:10::100-fd00:10::1ff'], default: true },
    { name: 'small', cidr: '10.250.0.0/28', gateway: '10.250.0.1' },
    { name: 'team', cidr: '10.251.0.0/24', namespaces: ['team-*'] },
    { name: 'v6b', cidr: 'fd00:20::/120' },
  ],
};

export const V4_ONLY_POOLS = {
  pools: [
    { name: 'default', cidr: '10.244.0.0/16', gateway: '10.244.0.1', default: true },
    { name: 'small', cidr: '10.250.0.0/28', gateway: '10.250.0.1' },
    { name: 'team', cidr: '10.251.0.0/24', namespaces: ['team-*'] },
    { name: 'v6', cidr: 'fd00:10::/120' },
  ],
};

export const WEBHOOK_CONFIG: WebhookConfig = {
  leaseTtlMs: DEFAULTS.leaseTtlMs,
  storeTimeoutMs: 500,
  bodyLimitBytes: 64 * 1024,
  serviceAccount: DEFAULTS.serviceAccount,
  statefulSetCreators: DEFAULTS.statefulSetCreators,
};

export interface Harness {
  readonly pools: PoolSet;
  readonly store: LeaseStore;
  readonly deps: WebhookDeps;
}

export const harness = async (
  doc: unknown = V4_ONLY_POOLS,
  overrides: Partial<WebhookDeps> & { namespaces?: NamespaceLookup } = {},
): Promise<Harness> => {
  const pools = toPoolSet(doc);
  const store = overrides.store ?? new MemoryLeaseStore();
  for (const pool of pools.pools.values()) await store.ensurePool(pool, { initialize: true });
  const deps: WebhookDeps = {
    store,
    pools,
    namespaces: NO_NAMESPACES,
    config: WEBHOOK_CONFIG,
    log: silentLogger(),
    ...overrides,
  };
  return { pools, store, deps };
};

export const decodePatch = (review: AdmissionReview): PatchOperation[] => {
  const patch = review.response?.patch;
  if (patch === undefined) return [];
  return JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as PatchOperation[];
};
