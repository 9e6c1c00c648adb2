import { inject } from 'vitest';
import { RedisLeaseStore } from '../../../src/pool/redis-store.js';
import { describeLeaseStoreContract } from '../../contract/lease-store.contract.js';

const skip = inject('redisSkip');

describeLeaseStoreContract(
  'redis',
  async () => {
    const store = await RedisLeaseStore.connect({ url: inject('redisUrl') });
    return { store, drop: p => store.dropPool(p.name) };
  },
  skip === '' ? '' : ` (skipped: ${skip})`,
);
