import { describe, expect, it } from 'vitest';
import { runLeases, runPools, runReservations, type CommandIo } from '../../../src/cli/commands.js';
import { loadConfig, type Config } from '../../../src/config/config.js';
import { newLeaseId } from '../../../src/pool/lease-id.js';
import { MemoryLeaseStore } from '../../../src/pool/memory-store.js';
import type { Pool } from '../../../src/pool/pools-file.js';

const POOLS = [
  'pools:',
  '  - name: small',
  '    cidr: 10.1.0.0/28', // 14 addresses
  '    default: true',
  '  - name: other',
  '    cidr: 10.2.0.0/29', // 6 addresses
  '',
].join('\n');

const configFor = (argv: string[]): Config =>
  loadConfig([...argv, '--pools', 'pools.yaml'], {}, { readFile: () => POOLS });

const capture = (style?: CommandIo['style']) => {
  let out = '';
  const io: CommandIo = {
    stdout: { write: t => (out += t) },
    stderr: { write: () => undefined },
    style,
  };
  return { io, out: () => out };
};

/** small: 6 pod leases (one bound, one sticky), 2 reservations without a pod, 2 released now. */
const populated = async (config: Config) => {
  const store = new MemoryLeaseStore();
  const small = config.pools.pools.get('small') as Pool;
  for (const p of config.pools.pools.values()) await store.ensurePool(p, { initialize: true });
  const ids = [];
  for (let i = 0; i < 7; i++) {
    const pod = { namespace: i % 2 === 0 ? 'web' : 'db', name: `p-${i}` };
    ids.push(
      (await store.allocate({ pool: small, leaseId: newLeaseId(), pod, ttlMs: 60_000 })).lease.id,
    );
  }
  await store.bind(small, ids[0]!, { namespace: 'web', name: 'p-0', uid: 'u0' });
  await store.release(small, ids[1]!);
  await store.release(small, ids[2]!);
  await store.reserve(small, 'db/pg/10');
  const held = await store.allocate({
    pool: small,
    leaseId: newLeaseId(),
    pod: { namespace: 'db', name: 'pg-2' },
    stickyKey: 'db/pg/2',
    ttlMs: 60_000,
  });
  await store.reserve(small, 'web/kafka/0');
  return { store, small, held };
};

describe('podlease pools', () => {
  it('prints counts and a usage bar per pool, with a legend', async () => {
    const config = configFor(['pools']);
    const { store } = await populated(config);
    const c = capture();
    expect(await runPools(config, store, c.io)).toBe(0);
    expect(c.out()).toBe(
      [
        'POOL    SIZE   LEASED   PENDING   RESERVED   COOLING   FREE   USAGE',
        'small   14     8        5         3          2         4      ########===~~~......',
        'other   6      0        0         0          0         6      ....................',
        'usage: # leased by a pod  = reserved, no pod  ~ released, cooling down (60s)  . free',
        '',
      ].join('\n'),
    );
  });

  it('takes --pool, draws blocks on a terminal, and keeps the JSON fields (with cooling)', async () => {
    const config = configFor(['pools', '--pool', 'small', '-o', 'json']);
    const { store } = await populated(config);
    const c = capture('unicode');
    await runPools(config, store, c.io);
    const [row, ...rest] = JSON.parse(c.out()) as Record<string, unknown>[];
    expect(rest).toEqual([]);
    expect(row).toMatchObject({
      name: 'small',
      family: 4,
      cidr: '10.1.0.0/28',
      default: true,
      state: 'ready',
      stats: { size: 14, leased: 8, pending: 5, bound: 1, reserved: 3, cooling: 2, free: 4 },
    });
    const table = capture('unicode');
    await runPools(configFor(['pools', '--pool', 'small']), store, table.io);
    expect(table.out()).toContain('████████▓▓▓▒▒▒░░░░░░');
  });

  it('counts nothing as cooling under --reuse-cooldown 0', async () => {
    const config = configFor(['pools', '--pool', 'small', '--reuse-cooldown', '0']);
    const { store } = await populated(config);
    const c = capture();
    await runPools(config, store, c.io);
    expect(c.out()).toContain('small   14     8        5         3          0         6      ');
  });
});

describe('podlease reservations', () => {
  it('lists pool, key, address and the lease holding it, ordinals in numeric order', async () => {
    const config = configFor(['reservations', '-o', 'json']);
    const { store, held } = await populated(config);
    const c = capture();
    await runReservations(config, store, { name: 'reservations' }, c.io);
    const rows = JSON.parse(c.out()) as { key: string; leaseId?: string }[];
    expect(rows.map(r => r.key)).toEqual(['db/pg/2', 'db/pg/10', 'web/kafka/0']);
    expect(rows[0]).toEqual({
      pool: 'small',
      key: 'db/pg/2',
      ip: held.lease.ip,
      leaseId: held.lease.id,
    });
    expect(rows[1]?.leaseId).toBeUndefined();
    const table = capture();
    const t = configFor(['reservations', '--namespace', 'db']);
    await runReservations(t, store, { name: 'reservations', namespace: 'db' }, table.io);
    expect(table.out()).toBe(
      [
        'POOL    KEY        IP         LEASE',
        `small   db/pg/2    10.1.0.9   ${held.lease.id}`,
        'small   db/pg/10   10.1.0.8   -',
        '',
      ].join('\n'),
    );
  });
});

describe('podlease leases', () => {
  it('--namespace keeps only that namespace', async () => {
    const config = configFor(['leases', '-o', 'json']);
    const { store } = await populated(config);
    const c = capture();
    await runLeases(config, store, { name: 'leases', namespace: 'db' }, c.io);
    const leases = JSON.parse(c.out()) as { namespace: string; name: string }[];
    expect(leases.map(l => l.name).sort()).toEqual(['p-3', 'p-5', 'pg-2']);
    expect(new Set(leases.map(l => l.namespace))).toEqual(new Set(['db']));
  });
});
