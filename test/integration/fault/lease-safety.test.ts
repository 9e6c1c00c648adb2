/**
 * The lease-safety fault suite (model.ts) on its own redis-server, which it stalls with SIGSTOP.
 * CI runs a fixed set of seeds; `npm run test:fault -- --seeds N` runs N more. A failure names
 * its seed and step: rerun it alone with PODLEASE_FAULT_SEEDS=<seed>.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../../../scripts/lib/redis-server.mjs';
import { runFaultSeed } from './model.js';

const skip = inject('redisSkip');
const seeds = (process.env.PODLEASE_FAULT_SEEDS ?? '1,2,3,4')
  .split(',')
  .map(s => Number(s.trim()))
  .filter(n => Number.isInteger(n));
const steps = Number(process.env.PODLEASE_FAULT_STEPS ?? '120');
const skipOps = (process.env.PODLEASE_FAULT_SKIP ?? '').split(',').filter(s => s !== '');

describe.skipIf(skip !== '')(
  `lease safety under faults${skip === '' ? '' : ` (skipped: ${skip})`}`,
  () => {
    let redis: RedisServer;

    beforeAll(async () => {
      redis = await startRedisServer({ prefix: 'podlease-fault-' });
    });

    afterAll(() => {
      redis.child.kill('SIGCONT');
      redis.stop();
    });

    it.each(seeds)(
      'seed %i: no address held twice, no acknowledged lease lost, nothing left behind',
      async seed => {
        const result = await runFaultSeed({
          seed,
          steps,
          skip: skipOps,
          redisUrl: redis.url,
          stall: stopped => {
            redis.child.kill(stopped ? 'SIGSTOP' : 'SIGCONT');
          },
        });
        console.log(`fault seed ${seed}: ${JSON.stringify(result)}`);
        // The run exercised what it is for.
        expect(result.allowed).toBeGreaterThan(20);
        expect(result.denied).toBeGreaterThan(0);
      },
      600_000,
    );
  },
);
