/**
 * Redis killed (`kill -9`) and started again on its port under a load of admissions:
 *
 * - with AOF (`appendfsync always`) every acknowledged lease is still there; the server comes
 *   back on a new replication history all the same, so allocation pauses (503 reconciling)
 *   until the controller has checked the pods, which restores nothing;
 * - without persistence the pool is gone: admission answers 503 (recovering), the controller
 *   rebuilds the pool from the pods' annotations, and allocation resumes without a duplicate.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { killNode, restartNode, spawnRedis } from '../../../scripts/lib/redis-ha.mjs';
import { freePort } from '../../../scripts/lib/redis-server.mjs';
import { toPoolSet } from '../../../src/pool/pools-file.js';
import { RedisLeaseStore } from '../../../src/pool/redis-store.js';
import { FakeApi } from '../../unit/controller/fake-api.js';
import {
  Admissions,
  duplicateAddresses,
  missingLeases,
  sleep,
  startController,
  timedConfirmations,
  until,
  webhookDeps,
} from './harness.js';

const skip = inject('redisSkip');
const pools = toPoolSet({ pools: [{ name: 'restart', cidr: '10.121.0.0/20', default: true }] });
const pool = pools.pools.get('restart')!;

describe.skipIf(skip !== '')(
  `Redis restarted under load${skip === '' ? '' : ` (skipped: ${skip})`}`,
  () => {
    const cleanup: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
    });

    const restart = async (args: readonly string[], tag: string) => {
      const dir = mkdtempSync(join(tmpdir(), 'podlease-restart-'));
      let node = await spawnRedis(await freePort(), dir, args);
      cleanup.push(async () => {
        await killNode(node);
        rmSync(dir, { recursive: true, force: true });
      });
      const url = `redis://127.0.0.1:${node.port}`;
      const webhook = await RedisLeaseStore.connect({ url, commandTimeoutMs: 1_000 });
      const control = await RedisLeaseStore.connect({ url, commandTimeoutMs: 3_000 });
      cleanup.push(() => Promise.all([webhook.close(), control.close()]).then());
      await control.ensurePool(pool, { initialize: true });
      const api = new FakeApi();
      const timed = timedConfirmations(control);
      const ctl = await startController(timed.store, pools, api);
      cleanup.push(() => ctl.stop());
      const load = new Admissions([webhookDeps(webhook, pools, 1_500)], api, tag);
      let resumed = false;
      const running = load.run(4, 30_000, () => resumed);
      await until('admissions before the restart', () => load.allowed.length >= 100, 15_000);
      const killedAt = Date.now();
      await killNode(node);
      const before = load.allowed.length;
      await sleep(300);
      node = await restartNode(node);
      await until(
        'allocation to resume after the restart',
        () => load.allowed.some(a => a.at > killedAt + 500),
        20_000,
      );
      resumed = true;
      await running;
      return {
        load,
        killedAt,
        before,
        confirmedAt: timed.confirmedAt,
        restored: await ctl.restored(),
        duplicates: duplicateAddresses(api),
        missing: await missingLeases(control, pool, load.allowed),
      };
    };

    it('with AOF: no lease lost; allocation waits for the reconcile of the new history', async () => {
      const r = await restart(['--appendonly', 'yes', '--appendfsync', 'always'], 'aof');
      expect(r.restored).toBe(0);
      expect(r.load.deniedWith('is reconciling')).toBeGreaterThan(0);
      expect(r.confirmedAt.length).toBeGreaterThan(0);
      expect(
        r.load
          .allowedBetween(r.killedAt + 100, r.confirmedAt[0]!)
          .map(a => `${a.name} at kill+${a.at - r.killedAt} ms`),
        `confirmed at kill+${r.confirmedAt.map(c => c - r.killedAt).join(',')} ms`,
      ).toEqual([]);
      expect(r.duplicates).toEqual([]);
      expect(r.missing).toEqual([]);
    }, 45_000);

    it('without persistence: rebuilt from the pods, then no duplicate', async () => {
      const r = await restart([], 'mem');
      expect(r.load.deniedWith('is not ready')).toBeGreaterThan(0);
      // Every lease was lost with the process and came back from the pods' annotations.
      expect(r.restored).toBeGreaterThanOrEqual(r.before);
      expect(r.duplicates).toEqual([]);
      expect(r.missing).toEqual([]);
    }, 45_000);
  },
);
