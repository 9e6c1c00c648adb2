import { describe, expect, it } from 'vitest';

import {
  podLeases,
  splitStickyKey,
  toPodInfo,
  toStatefulSetInfo,
} from '../../../src/controller/pod-info.js';

const owner = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'apps/v1',
  kind: 'StatefulSet',
  name,
  uid: 'sts-uid',
  controller: true,
  ...extra,
});

describe('podLeases', () => {
  it('pairs the i-th lease with the i-th address, dual-stack included', () => {
    expect(
      podLeases({ 'podlease.io/lease': 'v4/A,v6/B', 'podlease.io/ip': '10.0.0.2, fd00::2' }),
    ).toEqual([
      { pool: 'v4', id: 'A', ip: '10.0.0.2' },
      { pool: 'v6', id: 'B', ip: 'fd00::2' },
    ]);
  });

  it('skips malformed entries instead of guessing', () => {
    expect(
      podLeases({
        'podlease.io/lease': 'nopool,/x,p/',
        'podlease.io/ip': '1.1.1.1,2.2.2.2,3.3.3.3',
      }),
    ).toEqual([]);
    expect(podLeases({ 'podlease.io/lease': 'p/A' })).toEqual([]);
    expect(podLeases({})).toEqual([]);
  });
});

describe('toPodInfo', () => {
  const base = {
    uid: 'u',
    name: 'web-2',
    namespace: 'ns',
    resourceVersion: '7',
    annotations: {
      'podlease.io/sticky': 'true',
      'podlease.io/lease': 'p/A',
      'podlease.io/ip': '10.0.0.9',
    },
    labels: { 'apps.kubernetes.io/pod-index': '2' },
    ownerReferences: [owner('web')],
  };

  it('derives the sticky key from the controlling StatefulSet and the ordinal in the name', () => {
    expect(toPodInfo({ metadata: base })).toMatchObject({
      uid: 'u',
      stickyKey: 'ns/web/2',
      deleting: false,
      rv: '7',
    });
  });

  it('gives no sticky key when the proof does not hold', () => {
    const cases = [
      { ...base, labels: { 'apps.kubernetes.io/pod-index': '3' } },
      { ...base, name: 'other-2' },
      { ...base, ownerReferences: [owner('web', { controller: false })] },
      { ...base, ownerReferences: [owner('web', { apiVersion: 'apps/v1beta1' })] },
      { ...base, annotations: { 'podlease.io/lease': 'p/A', 'podlease.io/ip': '10.0.0.9' } },
    ];
    for (const metadata of cases) expect(toPodInfo({ metadata })?.stickyKey).toBeUndefined();
    expect(
      toPodInfo({
        metadata: {
          ...base,
          annotations: {
            ...base.annotations,
            'podlease.io/sticky': 'false',
            'podlease.io/ip-list': '10.0.0.7,10.0.0.8,10.0.0.9',
          },
        },
      })?.stickyKey,
    ).toBe('ns/web/2');
  });

  it('keeps nothing of an object without uid, name or namespace', () => {
    expect(toPodInfo({ metadata: { name: 'x', namespace: 'ns' } })).toBeUndefined();
    expect(toPodInfo({})).toBeUndefined();
  });

  it('marks a pod being deleted', () => {
    expect(
      toPodInfo({ metadata: { ...base, deletionTimestamp: '2026-01-01T00:00:00Z' } })?.deleting,
    ).toBe(true);
  });
});

describe('toStatefulSetInfo', () => {
  it('reads replicas, ordinals.start and the template’s retention annotations', () => {
    const info = toStatefulSetInfo({
      metadata: { uid: 's', name: 'db', namespace: 'ns', resourceVersion: '3' },
      spec: {
        replicas: 4,
        ordinals: { start: 5 },
        template: {
          metadata: {
            annotations: {
              'podlease.io/when-scaled': 'Delete',
              'podlease.io/when-deleted': 'Retain',
            },
          },
        },
      },
    } as never);
    expect(info).toMatchObject({
      key: 'ns/db',
      replicas: 4,
      start: 5,
      policy: { whenScaled: 'Delete', whenDeleted: 'Retain' },
    });
  });

  it('defaults to Retain on scale-down and Delete on deletion', () => {
    const info = toStatefulSetInfo({ metadata: { uid: 's', name: 'db', namespace: 'ns' } });
    expect(info).toMatchObject({
      replicas: 1,
      start: 0,
      policy: { whenScaled: 'Retain', whenDeleted: 'Delete' },
    });
  });
});

describe('splitStickyKey', () => {
  it('splits <namespace>/<statefulset>/<ordinal>', () => {
    expect(splitStickyKey('ns/web/12')).toEqual({ statefulSet: 'ns/web', ordinal: 12 });
    expect(splitStickyKey('ns/web/x')).toBeUndefined();
    expect(splitStickyKey('12')).toBeUndefined();
  });
});
