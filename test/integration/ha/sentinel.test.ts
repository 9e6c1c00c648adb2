/**
 * `kill -9` of the Sentinel-monitored primary under a load of admissions, through node-redis'
 * Sentinel client, with and without `--redis-min-replicas 1`. Before the kill the replicas are
 * cut off for a moment (the primary refuses their reconnection and drops their links), so the
 * primary takes writes no replica has: the window asynchronous replication always has, made
 * long enough to hit. Then:
 *
 * - with `--redis-min-replicas 1` no admission in that window is allowed (WAIT does not see the
 *   write on a replica: 503, and the lease is given back), so the promoted replica has every
 *   allowed pod's lease and the reconcile restores none;
 * - without it, admissions in the window are allowed, their leases are lost in the failover,
 *   the promoted replica's pools are held back (503 reconciling) until the controller has
 *   restored them from the pods' annotations, and only then does allocation resume.
 *
 * Either way every allowed pod ends up with a distinct address and its lease in the store.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createClient } from 'redis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { PODLEASE_BIN } from '../../../scripts/lib/podlease-serve.mjs';
import {
  killNode,
  redisSentinelInstalled,
  startSentinelSet,
  type SentinelSet,
} from '../../../scripts/lib/redis-ha.mjs';
import { toPoolSet } from '../../../src/pool/pools-file.js';
import { RedisLeaseStore } from '../../../src/pool/redis-store.js';
import { FakeApi } from '../../unit/controller/fake-api.js';
import { ensureBuilt } from '../webhook/serve-process.js';
import {
  Admissions,
  duplicateAddresses,
  missingLeases,
  requireAll,
  sleep,
  startController,
  timedConfirmations,
  until,
  webhookDeps,
} from './harness.js';

const missing = redisSentinelInstalled()
  ? ''
  : 'redis-sentinel is not installed (apt-get install redis-sentinel)';
if (missing !== '' && requireAll) throw new Error(`PODLEASE_REQUIRE_ALL=1: ${missing}`);
if (missing !== '') console.warn(`\n*** SKIPPING the Sentinel fault tests: ${missing} ***\n`);

const run = promisify(execFile);
const POOLS = { pools: [{ name: 'ha', cidr: '10.120.0.0/20', default: true }] };
const pools = toPoolSet(POOLS);
const pool = pools.pools.get('ha')!;
const dir = mkdtempSync(join(tmpdir(), 'podlease-sentinel-test-'));
const poolsFile = join(dir, 'pools.json');
writeFileSync(poolsFile, JSON.stringify(POOLS));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  readonly load: Admissions;
  readonly lockedAt: number;
  readonly killedAt: number;
  readonly confirmedAt: number;
  readonly restored: number;
  readonly duplicates: string[];
  readonly missing: string[];
}

describe.skipIf(missing !== '')(
  `Sentinel failover under load${missing === '' ? '' : ` (skipped: ${missing})`}`,
  () => {
    const cleanup: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
    });

    const failover = async (minReplicas: number): Promise<Run> => {
      ensureBuilt();
      const set: SentinelSet = await startSentinelSet({ replicas: 2, sentinels: 3 });
      cleanup.push(() => set.stop());
      const topology = {
        kind: 'sentinel' as const,
        masterName: set.masterName,
        sentinels: set.sentinelNodes,
      };
      const replicas = await Promise.all(
        [0, 1].map(() =>
          RedisLeaseStore.connect({ topology, minReplicas, commandTimeoutMs: 1_000 }),
        ),
      );
      const control = await RedisLeaseStore.connect({ topology, commandTimeoutMs: 3_000 });
      cleanup.push(() => Promise.all([...replicas, control].map(s => s.close())).then());
      // The pool is made ready by the podlease executable, from the Sentinel flags.
      const sentinels = set.sentinelNodes.map(n => `${n.host}:${n.port}`).join(',');
      const init = await run(process.execPath, [
        PODLEASE_BIN,
        'pools',
        'init',
        '--pools',
        poolsFile,
        '--redis-sentinels',
        sentinels,
        '--redis-sentinel-master',
        set.masterName,
        '-o',
        'json',
      ]);
      expect(JSON.parse(init.stdout)).toEqual([{ pool: 'ha', result: 'initialised' }]);
      const api = new FakeApi();
      const timed = timedConfirmations(control);
      const ctl = await startController(timed.store, pools, api);
      cleanup.push(() => ctl.stop());
      const load = new Admissions(
        replicas.map(s => webhookDeps(s, pools, 1_500)),
        api,
        `m${minReplicas}`,
      );
      let resumed = false;
      const running = load.run(6, 40_000, () => resumed);
      await until('admissions before the fault', () => load.allowed.length >= 60, 15_000);

      // The replicas stop hearing from the primary: their links are dropped and their
      // reconnections refused (a new password; established connections stay authenticated).
      const primary = set.nodes[0]!;
      const admin = createClient({ url: `redis://127.0.0.1:${primary.port}` });
      admin.on('error', () => undefined);
      await admin.connect();
      await admin.configSet('requirepass', 'cut-off');
      await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'replica']);
      const lockedAt = Date.now();
      await sleep(600);
      const killedAt = Date.now();
      admin.destroy();
      await killNode(primary);

      await until(
        'allocation to resume on the promoted replica',
        () => timed.confirmedAt.some(c => load.allowed.some(a => a.at > c)),
        25_000,
      );
      resumed = true;
      await running;
      expect(await set.primaryPort()).not.toBe(primary.port);
      console.log(
        `sentinel failover, min-replicas ${minReplicas}: ${load.allowed.length} allowed, ` +
          `${load.denied.length} denied, ${load.allowedBetween(lockedAt, killedAt).length} allowed ` +
          `while the replicas were cut off, restored ${await ctl.restored()}, allocation resumed ` +
          `${(timed.confirmedAt[0] ?? 0) - killedAt} ms after the kill`,
      );
      return {
        load,
        lockedAt,
        killedAt,
        confirmedAt: timed.confirmedAt[0] ?? 0,
        restored: await ctl.restored(),
        duplicates: duplicateAddresses(api),
        missing: await missingLeases(control, pool, load.allowed),
      };
    };

    it('--redis-min-replicas 1: nothing the replicas lack is allowed; the failover loses no allowed lease', async () => {
      const r = await failover(1);
      // The cut-off primary's writes were not acknowledged by a replica: denied, given back.
      expect(r.load.deniedWith('--redis-min-replicas')).toBeGreaterThan(0);
      expect(r.load.allowedBetween(r.lockedAt + 100, r.killedAt)).toEqual([]);
      // The promoted replica had every allowed pod's lease: the reconcile restored nothing.
      expect(r.restored).toBe(0);
      expect(r.duplicates).toEqual([]);
      expect(r.missing).toEqual([]);
      expect(r.load.allowedBetween(r.confirmedAt, Infinity).length).toBeGreaterThan(0);
    }, 60_000);

    it('without min-replicas: the leases lost in the failover are restored before allocation resumes, no duplicate', async () => {
      const r = await failover(0);
      const lost = r.load.allowedBetween(r.lockedAt + 100, r.killedAt);
      expect(lost.length).toBeGreaterThan(0);
      // Lost with the primary, restored from the pods' annotations by the reconcile.
      expect(r.restored).toBeGreaterThanOrEqual(lost.length);
      // Nothing was handed out on the new history before the reconcile confirmed it.
      expect(r.load.allowedBetween(r.killedAt + 100, r.confirmedAt)).toEqual([]);
      expect(r.load.deniedWith('is reconciling')).toBeGreaterThan(0);
      expect(r.duplicates).toEqual([]);
      expect(r.missing).toEqual([]);
      expect(r.load.allowedBetween(r.confirmedAt, Infinity).length).toBeGreaterThan(0);
    }, 60_000);
  },
);
