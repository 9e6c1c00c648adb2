import { describe, expect, it } from 'vitest';

import { audit, isProblem, type AuditInput } from '../../../src/controller/audit.js';
import type { PodInfo, StatefulSetInfo } from '../../../src/controller/pod-info.js';
import type { LeaseRecord, Reservation } from '../../../src/pool/store.js';

const pod = (
  uid: string,
  name: string,
  leases: PodInfo['leases'],
  stickyKey?: string,
): PodInfo => ({
  rv: '1',
  uid,
  namespace: 'ns',
  name,
  leases,
  stickyKey,
  deleting: false,
});

const lease = (id: string, ip: string, extra: Partial<LeaseRecord> = {}): LeaseRecord => ({
  id,
  pool: 'p',
  ip,
  state: 'bound',
  namespace: 'ns',
  name: `pod-${id}`,
  uid: `uid-${id}`,
  createdAt: 0,
  ...extra,
});

const input = (over: Partial<AuditInput>): AuditInput => ({
  pool: 'p',
  leases: [],
  reservations: [],
  pods: new Map(),
  finished: new Map(),
  statefulSets: new Map(),
  policies: new Map(),
  ...over,
});

const byUid = (...pods: PodInfo[]): Map<string, PodInfo> => new Map(pods.map(p => [p.uid, p]));

describe('audit', () => {
  it('finds nothing when every lease has its pod', () => {
    const p = pod('uid-A', 'pod-A', [{ pool: 'p', id: 'A', ip: '10.0.0.2' }]);
    expect(audit(input({ leases: [lease('A', '10.0.0.2')], pods: byUid(p) }))).toEqual([]);
  });

  it('reports a bound lease whose pod is gone as leaked, and one of a finished pod as finished', () => {
    const done = pod('uid-B', 'pod-B', [{ pool: 'p', id: 'B', ip: '10.0.0.3' }]);
    const found = audit(
      input({ leases: [lease('A', '10.0.0.2'), lease('B', '10.0.0.3')], finished: byUid(done) }),
    );
    expect(found.map(f => [f.kind, f.leaseId])).toEqual([
      ['leaked', 'A'],
      ['finished', 'B'],
    ]);
    expect(found.every(isProblem)).toBe(true);
  });

  it('reports a pending lease its pod carries as unbound (not a problem)', () => {
    const p = pod('u1', 'web', [{ pool: 'p', id: 'A', ip: '10.0.0.2' }]);
    const found = audit(
      input({
        leases: [lease('A', '10.0.0.2', { state: 'pending', uid: undefined })],
        pods: byUid(p),
      }),
    );
    expect(found.map(f => f.kind)).toEqual(['unbound']);
    expect(isProblem(found[0]!)).toBe(false);
  });

  it('leaves a pending lease no pod carries to the expiry', () => {
    expect(
      audit(input({ leases: [lease('A', '10.0.0.2', { state: 'pending', uid: undefined })] })),
    ).toEqual([]);
  });

  it('reports a lease a pod carries and the store lacks as missing', () => {
    const p = pod('u1', 'web', [
      { pool: 'p', id: 'Z', ip: '10.0.0.9' },
      { pool: 'other', id: 'Y', ip: '10.1.0.9' },
    ]);
    expect(audit(input({ pods: byUid(p) })).map(f => [f.kind, f.leaseId, f.ip])).toEqual([
      ['missing', 'Z', '10.0.0.9'],
    ]);
  });

  it('reports a lease id on two pods and two pods on one address as conflicts', () => {
    const a = pod('uid-A', 'pod-A', [{ pool: 'p', id: 'A', ip: '10.0.0.2' }]);
    const b = pod('uid-X', 'pod-X', [{ pool: 'p', id: 'A', ip: '10.0.0.2' }]);
    const found = audit(input({ leases: [lease('A', '10.0.0.2')], pods: byUid(a, b) }));
    expect(found.map(f => f.kind).sort()).toEqual(['duplicate-address', 'uid-conflict']);
  });

  it('reports reservations of a deleted StatefulSet only under a known when-deleted: Delete', () => {
    const reservations: Reservation[] = [
      { pool: 'p', key: 'ns/gone/0', ip: '10.0.0.5' },
      { pool: 'p', key: 'ns/kept/0', ip: '10.0.0.6' },
      { pool: 'p', key: 'ns/never-seen/0', ip: '10.0.0.7' },
    ];
    const policies = new Map([
      ['ns/gone', { whenScaled: 'Retain', whenDeleted: 'Delete' } as const],
      ['ns/kept', { whenScaled: 'Retain', whenDeleted: 'Retain' } as const],
    ]);
    expect(audit(input({ reservations, policies })).map(f => [f.kind, f.key])).toEqual([
      ['statefulset-gone', 'ns/gone/0'],
    ]);
  });

  it('reports reservations above the replicas under when-scaled: Delete, honouring ordinals.start, unless a pod holds them', () => {
    const sts: StatefulSetInfo = {
      rv: '1',
      uid: 's',
      key: 'ns/db',
      replicas: 2,
      start: 3,
      policy: { whenScaled: 'Delete', whenDeleted: 'Delete' },
    };
    const reservations: Reservation[] = [2, 3, 4, 5, 6].map(i => ({
      pool: 'p',
      key: `ns/db/${i}`,
      ip: `10.0.0.${i}`,
    }));
    const holder = pod('u6', 'db-6', [{ pool: 'p', id: 'H', ip: '10.0.0.6' }], 'ns/db/6');
    const found = audit(
      input({
        reservations,
        statefulSets: new Map([['ns/db', sts]]),
        pods: byUid(holder),
        leases: [lease('H', '10.0.0.6', { uid: 'u6' })],
      }),
    );
    expect(found.map(f => [f.kind, f.key])).toEqual([
      ['scaled-down', 'ns/db/2'],
      ['scaled-down', 'ns/db/5'],
    ]);
  });
});
