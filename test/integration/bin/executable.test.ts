import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PODLEASE_BIN } from '../../../scripts/lib/podlease-serve.mjs';
import { newLeaseId } from '../../../src/pool/lease-id.js';
import { parsePoolsText, type Pool } from '../../../src/pool/pools-file.js';
import { RedisLeaseStore } from '../../../src/pool/redis-store.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/** Runs the built file itself, as a user would: its `#!/usr/bin/env node` finds `node` on PATH. */
const run = (args: string[], path: string): string =>
  execFileSync(PODLEASE_BIN, args, { encoding: 'utf8', env: { ...process.env, PATH: path } });

describe('dist/bin/podlease.js after npm run build', () => {
  it('is executable and keeps its shebang', () => {
    expect(statSync(PODLEASE_BIN).mode & 0o111).toBe(0o111);
    expect(readFileSync(PODLEASE_BIN, 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
  });

  it('answers version and help when run directly', () => {
    const path = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`;
    expect(run(['version'], path)).toBe(`podlease ${pkg.version}\n`);
    expect(run(['help', 'serve'], path)).toMatch(
      /--metrics-listen VALUE \(PODLEASE_METRICS_LISTEN\)/,
    );
  });
});

const skip = inject('redisSkip');

describe.skipIf(skip !== '')(
  `podlease pools and reservations against Redis${skip === '' ? '' : ` (skipped: ${skip})`}`,
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'podlease-cli-'));
    const name = `cli-${randomUUID().slice(0, 8)}`;
    const poolsFile = join(dir, 'pools.yaml');
    const poolsText = `pools:\n  - name: ${name}\n    cidr: 10.91.0.0/29\n`; // 6 addresses
    let store: RedisLeaseStore;
    let pool: Pool;
    let sticky: { id: string; ip: string };

    /** The CLI as a user runs it, on Node 24, against the test Redis (stdout is not a TTY). */
    const cli = (...args: string[]): string =>
      execFileSync(process.execPath, [PODLEASE_BIN, ...args, '--pools', poolsFile], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '', REDIS_URL: inject('redisUrl') },
      });

    beforeAll(async () => {
      writeFileSync(poolsFile, poolsText);
      pool = parsePoolsText(poolsText, poolsFile).pools.get(name)!;
      expect(JSON.parse(cli('pools', 'init', '-o', 'json'))).toEqual([
        { pool: name, result: 'initialised' },
      ]);
      store = await RedisLeaseStore.connect({ url: inject('redisUrl') });
      const lease = (extra = {}) =>
        store.allocate({
          pool,
          leaseId: newLeaseId(),
          pod: { namespace: 'web', name: 'p' },
          ttlMs: 60_000,
          ...extra,
        });
      await lease();
      const gone = await lease();
      await store.release(pool, gone.lease.id); // just now: cooling for the default 60s
      await store.reserve(pool, 'db/pg/0');
      const s = await lease({ stickyKey: 'db/pg/1', pod: { namespace: 'db', name: 'pg-1' } });
      sticky = { id: s.lease.id, ip: s.lease.ip };
    });

    afterAll(async () => {
      await store.dropPool(name);
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('pools -o json has the stats with cooling; free leaves the cooling address out', () => {
      const [row] = JSON.parse(cli('pools', '--pool', name, '-o', 'json')) as {
        name: string;
        state: string;
        stats: Record<string, number>;
      }[];
      expect(row).toMatchObject({ name, state: 'ready' });
      expect(row?.stats).toEqual({
        pool: name,
        size: 6,
        leased: 3,
        pending: 2,
        bound: 0,
        reserved: 2,
        cooling: 1,
        free: 2,
      });
      const [none] = JSON.parse(
        cli('pools', '--pool', name, '-o', 'json', '--reuse-cooldown', '0'),
      ) as { stats: Record<string, number> }[];
      expect(none?.stats).toMatchObject({ cooling: 0, free: 3 });
    });

    it('pools prints a plain ASCII bar and its legend when stdout is not a terminal', () => {
      const [header, row, legend, ...rest] = cli('pools', '--pool', name).split('\n');
      expect(header).toMatch(/^POOL +SIZE +LEASED +PENDING +RESERVED +COOLING +FREE +USAGE$/);
      expect(row?.split(/ +/)).toEqual([
        name,
        '6',
        '3',
        '2',
        '2',
        '1',
        '2',
        '#######===~~~.......',
      ]);
      expect(legend).toBe(
        'usage: # leased by a pod  = reserved, no pod  ~ released, cooling down (60s)  . free',
      );
      expect(rest).toEqual(['']);
    });

    it('reservations lists pool, key, address and the holding lease; --namespace filters', () => {
      const all = JSON.parse(cli('reservations', '--pool', name, '-o', 'json')) as unknown[];
      expect(all).toEqual([
        { pool: name, key: 'db/pg/0', ip: expect.any(String) as string },
        { pool: name, key: 'db/pg/1', ip: sticky.ip, leaseId: sticky.id },
      ]);
      expect(JSON.parse(cli('reservations', '--namespace', 'web', '-o', 'json'))).toEqual([]);
      const table = cli('reservations', '--pool', name, '--namespace', 'db');
      expect(table.split('\n')[0]).toMatch(/^POOL +KEY +IP +LEASE$/);
      expect(table).toContain(`db/pg/1   ${sticky.ip}   ${sticky.id}`);
      expect(table).toMatch(/db\/pg\/0 +10\.91\.0\.\d +-\n/);
    });
  },
);
