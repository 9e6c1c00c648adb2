import { MemoryLeaseStore } from '../../../src/pool/memory-store.js';
import { describeLeaseStoreContract } from '../../contract/lease-store.contract.js';

describeLeaseStoreContract('memory', () =>
  Promise.resolve({ store: new MemoryLeaseStore(), drop: () => Promise.resolve() }),
);
