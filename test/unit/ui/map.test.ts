import { describe, expect, it } from 'vitest';
import { MemoryLeaseStore } from '../../../src/pool/memory-store.js';
import { newLeaseId } from '../../../src/pool/lease-id.js';
import { parseReport, toReportJson } from '../../../src/pool/report.js';
import type { Pool } from '../../../src/pool/pools-file.js';
import { buildPoolMap, CELL, Grid, namespaceUse } from '../../../src/ui/map.js';
import { escapeHtml, renderPoolPage, renderSummary } from '../../../src/ui/page.js';
import { searchPool } from '../../../src/ui/search.js';
import { testPool } from '../../helpers/pools.js';

const T = 1_800_000_000_000;
const COOL = 60_000;

const setUp = async (p: Pool) => {
  const store = new MemoryLeaseStore();
  await store.ensurePool(p, { initialize: true });
  const lease = (ns: string, name: string, extra: Record<string, unknown> = {}) =>
    store.allocate({
      pool: p,
      leaseId: newLeaseId(),
      pod: { namespace: ns, name },
      ttlMs: 60_000,
      now: T,
      ...extra,
    });
  return { store, lease };
};

describe('pool map model', () => {
  it('a /28: every address a cell, coloured by layout and store state', async () => {
    const p = testPool({ cidr: '10.1.2.16/28', gateway: '10.1.2.17', exclude: ['10.1.2.30'] });
    const { store, lease } = await setUp(p);
    const a = await lease('web', 'a'); // .18
    await store.bind(p, a.lease.id, { namespace: 'web', name: 'a', uid: 'ua' });
    await lease('web', 'b'); // .19 pending
    const gone = await lease('web', 'c'); // .20
    await store.release(p, gone.lease.id, { now: T });
    await store.reserve(p, 'db/pg/0', '10.1.2.25');
    await lease('db', 'pg-1', { stickyKey: 'db/pg/1', ip: '10.1.2.26' });
    const snap = await store.snapshot(p, { now: T + 1_000, reuseCooldownMs: COOL });
    const report = parseReport(
      toReportJson(T, [{ kind: 'leaked', message: 'gone', ip: '10.1.2.18' }]),
    );
    const map = buildPoolMap(p, snap, report);
    expect(map.unit).toBe(1);
    expect(map.sections).toEqual([
      {
        title: '10.1.2.16/28',
        blocks: [
          { label: '10.1.2.16/28', first: 0, count: 16, offset: 16, base: String(0x0a010200) },
        ],
      },
    ]);
    // .16 network, .17 gateway, .18 bound, .19 pending, .20 cooling, .25 sticky, .26 sticky+pod,
    // .30 excluded, .31 broadcast.
    expect(map.cells).toBe('ngbpc....rR...xn');
    expect(map.holders.map(h => [h[0], h[1], h[2], h[3], h[7]])).toEqual([
      [2, CELL.bound, 'web', 'a', ''],
      [3, CELL.pending, 'web', 'b', ''],
      [4, CELL.cooling, '', '', ''],
      [9, CELL.reserved, 'db', '', 'db/pg/0'],
      [10, CELL.reservedPod, 'db', 'pg-1', 'db/pg/1'],
    ]);
    expect(map.findings).toEqual([{ cell: 2, ip: '10.1.2.18', kind: 'leaked', message: 'gone' }]);
    expect(map.namespaces).toEqual([
      { namespace: 'db', held: 2, bound: 0, pending: 1, reserved: 2 },
      { namespace: 'web', held: 2, bound: 1, pending: 1, reserved: 0 },
    ]);
    expect(namespaceUse(snap)).toHaveLength(2);
    const html = renderSummary(map, report);
    expect(html).toContain('<dt><i style="background:#2563eb"></i>bound</dt><dd>1</dd>');
    expect(html).toContain('leaked 1');
  });

  it('a /16 has one cell per address in 256 blocks of a /24; a /8 one cell per /24', async () => {
    const p16 = testPool({ cidr: '10.80.0.0/16' });
    const g16 = new Grid(p16);
    expect([g16.unit, g16.total]).toEqual([1n, 65_536]);
    const s16 = g16.sections()[0]!;
    expect(s16.blocks).toHaveLength(256);
    expect(s16.blocks[3]).toMatchObject({ label: '10.80.3.0/24', first: 768, count: 256 });

    const p8 = testPool({ cidr: '10.0.0.0/8', gateway: '10.0.0.1' });
    const { store, lease } = await setUp(p8);
    for (let i = 0; i < 300; i++) await lease('bulk', `p${i}`);
    await lease('x', 'far', { ip: '10.7.7.7' });
    const map = buildPoolMap(p8, await store.snapshot(p8), undefined);
    expect(map.unit).toBe(256);
    expect(map.sections[0]!.blocks).toHaveLength(256);
    expect(map.sections[0]!.blocks[7]).toMatchObject({ label: '10.7.0.0/16', first: 7 * 256 });
    expect(map.cells).toHaveLength(65_536);
    // 10.0.0.0/24 leaves out network and gateway: 254 allocatable, all 254 held.
    expect(map.alloc.slice(0, 3)).toEqual([254, 256, 256]);
    expect(map.cells.slice(0, 3)).toBe('510'); // full, 46 of 256, empty
    expect(map.cells[7 * 256 + 7]).toBe('1');
    expect(map.alloc[65_535]).toBe(255);
    expect(map.aggregate[0]).toEqual([0, 0, 254, 0, 0, 0]);
    expect(map.holders).toEqual([]);
  });

  it('IPv6 draws its ranges, a block per 256 addresses', () => {
    const p = testPool({
      cidr: 'fd00:10::/64',
      ranges: ['fd00:10::100-fd00:10::2ff', 'fd00:10::1:0/120'],
    });
    const sections = new Grid(p).sections();
    expect(sections.map(s => [s.title, s.blocks.map(b => b.label)])).toEqual([
      ['fd00:10::100-fd00:10::2ff', ['fd00:10::100/120', 'fd00:10::200/120']],
      ['fd00:10::1:0-fd00:10::1:ff', ['fd00:10::1:0/120']],
    ]);
    expect(sections[1]!.blocks[0]!.first).toBe(512);
  });

  it('search: an address whatever its state, else pods, namespaces, lease ids, sticky keys', async () => {
    const p = testPool({ cidr: '10.1.3.0/28', gateway: '10.1.3.1' });
    const { store, lease } = await setUp(p);
    const a = await lease('shop', 'cart-0');
    await lease('shop-dev', 'cart-1');
    await store.reserve(p, 'shop/redis/0');
    const snap = await store.snapshot(p);
    expect(searchPool(p, snap, '10.1.3.2').hits).toEqual([
      {
        ip: '10.1.3.2',
        cell: 2,
        state: 'pending',
        namespace: 'shop',
        pod: 'cart-0',
        leaseId: a.lease.id,
        key: undefined,
        createdAt: T,
      },
    ]);
    expect(searchPool(p, snap, '10.1.3.1').hits[0]?.state).toBe(
      'not allocatable: it is the pool gateway',
    );
    expect(searchPool(p, snap, '10.1.3.9').hits[0]?.state).toBe('free');
    expect(searchPool(p, snap, 'fd00::1').hits[0]?.state).toBe('not in this IPv4 pool');
    expect(searchPool(p, snap, 'cart').total).toBe(2);
    expect(searchPool(p, snap, 'shop/').hits.map(h => h.ip)).toEqual(['10.1.3.2', '10.1.3.4']);
    expect(searchPool(p, snap, a.lease.id.toLowerCase()).total).toBe(1);
    expect(searchPool(p, snap, 'redis').hits[0]).toMatchObject({ key: 'shop/redis/0' });
    expect(searchPool(p, snap, '  ').total).toBe(0);
  });

  it('pages escape what the store holds', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe(
      '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;',
    );
    const p = testPool({ cidr: '10.1.4.0/30' });
    const html = renderPoolPage(
      { title: 't', pools: { pools: new Map([[p.name, p]]), defaults: {} }, storeKind: 'memory' },
      { pool: p, map: undefined, report: undefined, problem: 'no <state>', pollMs: 5_000 },
    );
    expect(html).toContain('no &lt;state&gt;');
  });
});
