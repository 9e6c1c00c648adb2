/**
 * A 3-master Redis Cluster (a replica each, `redis-cli --cluster create`) through node-redis'
 * Cluster client: the whole store contract, pools spread over every master's slots, and a master
 * killed under load (its replica cut off first, so it takes writes nobody else has): the replica
 * is promoted, the pools of that master pause (503 reconciling) until the controller restored
 * what was lost, the other masters' pools keep allocating, and no address is held twice.
 */
import { createClient } from 'redis';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import {
  cli,
  killNode,
  redisCliInstalled,
  startRedisCluster,
  type RedisClusterSet,
} from '../../../scripts/lib/redis-ha.mjs';
import { toKey } from '../../../src/pool/keys.js';
import { toPoolSet, type PoolSet } from '../../../src/pool/pools-file.js';
import { RedisLeaseStore } from '../../../src/pool/redis-store.js';
import { describeLeaseStoreContract } from '../../contract/lease-store.contract.js';
import { FakeApi } from '../../unit/controller/fake-api.js';
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

const redisSkip = inject('redisSkip');
const missing =
  redisSkip !== ''
    ? redisSkip
    : redisCliInstalled()
      ? ''
      : 'redis-cli is not installed (apt-get install redis-tools)';
if (missing !== '' && requireAll) throw new Error(`PODLEASE_REQUIRE_ALL=1: ${missing}`);

let cluster: RedisClusterSet | undefined;
const opened: RedisLeaseStore[] = [];
const clusterOnce = async (): Promise<RedisClusterSet> => (cluster ??= await startRedisCluster());
const connect = async (commandTimeoutMs: number): Promise<RedisLeaseStore> => {
  const c = await clusterOnce();
  const store = await RedisLeaseStore.connect({
    topology: { kind: 'cluster', nodes: c.seeds },
    commandTimeoutMs,
  });
  opened.push(store);
  return store;
};

afterAll(async () => {
  await Promise.all(opened.splice(0).map(s => s.close().catch(() => undefined)));
  await cluster?.stop();
});

describeLeaseStoreContract(
  'redis cluster (3 masters)',
  async () => {
    const store = await connect(5_000);
    return { store, drop: p => store.dropPool(p.name) };
  },
  missing === '' ? '' : ` (skipped: ${missing})`,
);

/** Pool names whose slots sit on the master serving port → [names…], `perMaster` each. */
const poolsByMaster = async (perMaster: number): Promise<Map<number, string[]>> => {
  const c = await clusterOnce();
  const out = new Map<number, string[]>();
  for (let i = 0; i < 200 && [...out.values()].flat().length < perMaster * 3; i++) {
    const name = `cl-${i}`;
    const port = (await c.masterOf(toKey(name, 'meta'))).port;
    const list = out.get(port) ?? [];
    if (list.length < perMaster) out.set(port, [...list, name]);
  }
  return out;
};

const poolSetOf = (names: readonly string[]): PoolSet =>
  toPoolSet({
    pools: names.map((name, i) => ({ name, cidr: `10.${130 + i}.0.0/22`, default: i === 0 })),
  });

describe.skipIf(missing !== '')(
  `Redis Cluster${missing === '' ? '' : ` (skipped: ${missing})`}`,
  () => {
    const cleanup: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
    });

    it('pools spread over every master; each one allocates, lists and releases, after SCRIPT FLUSH', async () => {
      const byMaster = await poolsByMaster(2);
      expect(byMaster.size).toBe(3);
      const pools = poolSetOf([...byMaster.values()].flat());
      const store = await connect(5_000);
      // Each master loads the scripts again on its own (NOSCRIPT, then EVAL).
      await store.ensurePool(pools.pools.values().next().value!, { initialize: true });
      for (const n of (await clusterOnce()).nodes) await cli(n.port, ['SCRIPT', 'FLUSH']);
      for (const p of pools.pools.values()) {
        await store.dropPool(p.name);
        expect(await store.ensurePool(p, { initialize: true })).toBe('created');
        const a = await store.allocate({
          pool: p,
          leaseId: `L-${p.name}`,
          pod: { namespace: 'default', generateName: 'x-' },
          ttlMs: 60_000,
        });
        expect((await store.leases(p)).map(l => l.ip)).toEqual([a.lease.ip]);
        expect((await store.history(p)).reconciledOn).toBe((await store.history(p)).current);
        expect((await store.release(p, a.lease.id)).released).toBe(true);
        await store.dropPool(p.name);
      }
      await store.ping();
    });

    it('a master killed under load: its replica is promoted, its pools reconcile, no duplicate', async () => {
      const c = await clusterOnce();
      const byMaster = await poolsByMaster(1);
      const [victimPort, victimPools] = [...byMaster.entries()][0]!;
      const names = [...byMaster.values()].flat();
      const pools = poolSetOf(names);
      const replicas = await Promise.all([connect(1_000), connect(1_000)]);
      const control = await connect(3_000);
      for (const p of pools.pools.values()) {
        await control.dropPool(p.name);
        await control.ensurePool(p, { initialize: true });
      }
      const api = new FakeApi();
      const timed = timedConfirmations(control);
      const ctl = await startController(timed.store, pools, api);
      cleanup.push(() => ctl.stop());
      const load = new Admissions(
        replicas.map(s => webhookDeps(s, pools, 1_500)),
        api,
        'cluster',
        n => ({ 'podlease.io/pool': names[n % names.length]! }),
      );
      let resumed = false;
      const running = load.run(6, 40_000, () => resumed);
      await until('admissions before the fault', () => load.allowed.length >= 90, 15_000);

      const victim = c.nodes.find(n => n.port === victimPort)!;
      const admin = createClient({ url: `redis://127.0.0.1:${victimPort}` });
      admin.on('error', () => undefined);
      await admin.connect();
      await admin.configSet('requirepass', 'cut-off');
      await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'replica']);
      const lockedAt = Date.now();
      await sleep(500);
      admin.destroy();
      const killedAt = Date.now();
      await killNode(victim);

      const victimPool = victimPools[0]!;
      await until(
        'allocation to resume in the pool of the killed master',
        () =>
          timed.confirmedAt.some(t => load.allowed.some(a => a.pool === victimPool && a.at > t)),
        30_000,
      );
      resumed = true;
      await running;
      const confirmedAt = timed.confirmedAt[0]!;
      const lost = load.allowedBetween(lockedAt + 100, killedAt).filter(a => a.pool === victimPool);
      const restored = await ctl.restored();
      console.log(
        `cluster master ${victimPort} killed: ${load.allowed.length} allowed, ` +
          `${lost.length} in its pool while its replica was cut off, restored ${restored}, ` +
          `its pool resumed ${confirmedAt - killedAt} ms after the kill`,
      );
      const newMaster = await c.masterOf(toKey(victimPool, 'meta'));
      expect(newMaster.port).not.toBe(victimPort);
      expect((await cli(newMaster.port, ['ROLE'])).split('\n')[0]).toBe('master');
      expect(lost.length).toBeGreaterThan(0);
      expect(restored).toBeGreaterThanOrEqual(lost.length);
      // The killed master's pool handed out nothing on the new history before the reconcile;
      // the other masters' pools went on allocating meanwhile.
      const between = load.allowedBetween(killedAt + 100, confirmedAt);
      expect(between.filter(a => a.pool === victimPool)).toEqual([]);
      expect(between.filter(a => a.pool !== victimPool).length).toBeGreaterThan(0);
      expect(duplicateAddresses(api)).toEqual([]);
      for (const p of pools.pools.values()) {
        expect(await missingLeases(control, p, load.allowed)).toEqual([]);
        await control.dropPool(p.name);
      }
    }, 60_000);
  },
);
