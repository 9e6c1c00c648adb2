import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/config/config.js';
import { toPoolSet } from '../../../src/pool/pools-file.js';
import { UnknownPoolError } from '../../../src/pool/errors.js';
import { decide, type DecisionInput, type Plan } from '../../../src/webhook/decide.js';
import {
  AddressOutsidePoolError,
  BadAnnotationError,
  NamespaceNotAllowedError,
  StatefulSetCreatorError,
} from '../../../src/webhook/errors.js';
import { toPodView } from '../../../src/webhook/review.js';
import { statefulSetIdentity } from '../../../src/webhook/statefulset.js';
import {
  loadReview,
  reviewWith,
  type AdmissionFixture,
  type ReviewJson,
} from '../../fixtures/admission/load.js';
import { TEST_POOLS, V4_ONLY_POOLS } from './helpers.js';

const v4 = toPoolSet(V4_ONLY_POOLS);
const dual = toPoolSet(TEST_POOLS);

/** The decision input of a review as handlers.ts builds it: its pod and its userInfo. */
const fromReview = (r: ReviewJson, more: Partial<DecisionInput> = {}): DecisionInput => ({
  namespace: r.request.namespace ?? 'default',
  pod: toPodView(r.request.object),
  namespaceAnnotations: undefined,
  pools: v4,
  userInfo: r.request.userInfo,
  statefulSetCreators: DEFAULTS.statefulSetCreators,
  ...more,
});

const input = (
  fixture: AdmissionFixture,
  annotations?: Record<string, string> | null,
  more: Partial<DecisionInput> = {},
): DecisionInput =>
  fromReview(
    annotations === undefined ? loadReview(fixture) : reviewWith(fixture, { annotations }),
    more,
  );

const lease = (plan: Plan): Extract<Plan, { kind: 'lease' }> => {
  if (plan.kind !== 'lease') throw new Error(`expected a lease plan, got ${plan.kind}`);
  return plan;
};

describe('decide: pools', () => {
  it('takes the default pool and fills podlease.io/pool in when the pod names none', () => {
    const plan = lease(decide(input('create-pod-deployment')));
    expect(plan.claims.map(c => c.pool.name)).toEqual(['default']);
    expect(plan.fillPool).toBe('default');
    expect(plan.pod).toEqual({
      namespace: 'default',
      name: undefined,
      generateName: 'web-7d9f8b6c5d-',
    });
  });

  it('uses the pod annotation, else the namespace annotation', () => {
    expect(
      lease(decide(input('create-pod-deployment', { 'podlease.io/pool': 'small' }))).claims[0]?.pool
        .name,
    ).toBe('small');
    const fromNs = lease(
      decide(
        input('create-pod-deployment', null, {
          namespaceAnnotations: { 'podlease.io/pool': 'small' },
        }),
      ),
    );
    expect(fromNs.claims[0]?.pool.name).toBe('small');
    expect(fromNs.fillPool).toBe('small');
    const podWins = decide(
      input(
        'create-pod-deployment',
        { 'podlease.io/pool': 'default' },
        { namespaceAnnotations: { 'podlease.io/pool': 'small' } },
      ),
    );
    expect(lease(podWins).claims[0]?.pool.name).toBe('default');
    expect(lease(podWins).fillPool).toBeUndefined();
  });

  it('makes every pod dual-stack when both families have a default, IPv4 first', () => {
    const plan = lease(decide(input('create-pod-deployment', null, { pools: dual })));
    expect(plan.claims.map(c => c.pool.name)).toEqual(['default', 'v6']);
    expect(plan.fillPool).toBe('default,v6');
  });

  it('orders `v6,v4` pool lists IPv4 first', () => {
    const plan = lease(
      decide(input('create-pod-deployment', { 'podlease.io/pool': 'v6b, small' }, { pools: dual })),
    );
    expect(plan.claims.map(c => c.pool.name)).toEqual(['small', 'v6b']);
  });

  it('denies unknown pools listing the known ones (404)', () => {
    const run = (): Plan => decide(input('create-pod-unknown-pool'));
    expect(run).toThrow(UnknownPoolError);
    expect(run).toThrow('unknown pool "nope"; known pools: default, small, team, v6');
  });

  it('denies two pools of one family and more than two pools', () => {
    expect(() =>
      decide(input('create-pod-deployment', { 'podlease.io/pool': 'default,small' })),
    ).toThrow(/two IPv4 pools/);
    expect(() => decide(input('create-pod-deployment', { 'podlease.io/pool': 'a,b,c' }))).toThrow(
      BadAnnotationError,
    );
  });

  it('denies a namespace outside the pool allow-list (403)', () => {
    const r = reviewWith('create-pod-deployment', {
      annotations: { 'podlease.io/pool': 'team' },
      namespace: 'default',
    });
    const run = (): Plan => decide(fromReview(r));
    expect(run).toThrow(NamespaceNotAllowedError);
    expect(run).toThrow(/namespace "default" may not use pool "team" \(it allows: team-\*\)/);
    expect(lease(decide(fromReview(r, { namespace: 'team-a' }))).claims).toHaveLength(1);
  });

  it('denies when there is no pool at all', () => {
    const noDefault = toPoolSet({ pools: [{ name: 'a', cidr: '10.1.0.0/24' }] });
    expect(() => decide(input('create-pod-deployment', null, { pools: noDefault }))).toThrow(
      /no pool for this pod.*one of: a/,
    );
  });
});

describe('decide: skips', () => {
  it('leaves hostNetwork pods alone', () => {
    expect(decide(input('create-pod-hostnetwork'))).toEqual({
      kind: 'skip',
      reason: 'host-network',
      discard: [],
    });
  });

  it('leaves podlease.io/ignore pods alone but discards forged owned annotations', () => {
    const plan = decide(
      input('create-pod-deployment', { 'podlease.io/ignore': 'true', 'podlease.io/ip': '1.2.3.4' }),
    );
    expect(plan).toEqual({ kind: 'skip', reason: 'ignore', discard: ['podlease.io/ip'] });
    expect(() => decide(input('create-pod-deployment', { 'podlease.io/ignore': 'yes' }))).toThrow(
      /is not "true" or "false"/,
    );
  });

  it('lists forged owned annotations to discard on a leased pod too', () => {
    const plan = lease(decide(input('create-pod-forged-lease')));
    expect([...plan.discard].sort()).toEqual([
      'podlease.io/gateway',
      'podlease.io/ip',
      'podlease.io/lease',
    ]);
  });
});

describe('decide: exact addresses', () => {
  it('takes a static IP inside the pool', () => {
    expect(lease(decide(input('create-pod-static-ip'))).claims[0]?.ip).toBe('10.244.3.3');
  });

  it('canonicalises IPv6 static addresses', () => {
    const plan = lease(
      decide(
        input(
          'create-pod-deployment',
          { 'podlease.io/static-ip': '10.244.0.9,FD00:10:0:0::1A0' },
          { pools: dual },
        ),
      ),
    );
    expect(plan.claims.map(c => c.ip)).toEqual(['10.244.0.9', 'fd00:10::1a0']);
  });

  it('denies a malformed address (400)', () => {
    expect(() => decide(input('create-pod-bad-address'))).toThrow(
      /static-ip: "10.244.3.300" is not an IP address/,
    );
  });

  it('denies an address outside the pool, naming the pool that has it', () => {
    const run = (): Plan =>
      decide(input('create-pod-deployment', { 'podlease.io/static-ip': '10.250.0.5' }));
    expect(run).toThrow(AddressOutsidePoolError);
    expect(run).toThrow(/10.250.0.5 is not allocatable in pool "default".*belongs to pool "small"/);
    expect(() =>
      decide(input('create-pod-deployment', { 'podlease.io/static-ip': '10.244.0.1' })),
    ).toThrow(/gateway/);
    expect(() =>
      decide(input('create-pod-deployment', { 'podlease.io/static-ip': '10.244.255.255' })),
    ).toThrow(
      /10.244.255.255 is not allocatable in pool "default" \(10.244.0.0\/16\): it is the broadcast address/,
    );
    expect(() =>
      decide(input('create-pod-deployment', { 'podlease.io/static-ip': '10.244.0.0' })),
    ).toThrow(/it is the network address/);
  });

  it('denies an IPv6 static address for an IPv4-only pod', () => {
    expect(() =>
      decide(input('create-pod-deployment', { 'podlease.io/static-ip': 'fd00:10::5' })),
    ).toThrow(/IPv6 address/);
  });
});

describe('decide: StatefulSets', () => {
  it('keys sticky pods by namespace/statefulset/ordinal', () => {
    const plan = lease(decide(input('create-pod-statefulset')));
    expect(plan.claims[0]?.stickyKey).toBe('default/web/0');
    expect(plan.pod.name).toBe('web-0');
  });

  it('reads the ordinal from the name, checked against the pod-index label when present', () => {
    const r = reviewWith('create-pod-statefulset', { podName: 'web-12' });
    expect(statefulSetIdentity(toPodView(r.request.object))).toEqual({
      ok: true,
      identity: { statefulSet: 'web', ordinal: 12 },
    });
    const pod = r.request.object;
    if (pod?.metadata.labels) delete pod.metadata.labels['apps.kubernetes.io/pod-index'];
    expect(statefulSetIdentity(toPodView(pod))).toEqual({
      ok: true,
      identity: { statefulSet: 'web', ordinal: 12 },
    });
  });

  it('gives ordinal N the N-th address of ip-list', () => {
    const list = { 'podlease.io/ip-list': '10.244.9.10,10.244.9.11,10.244.9.12' };
    const r = reviewWith('create-pod-statefulset', { annotations: list, podName: 'web-2' });
    const plan = lease(decide(fromReview(r)));
    expect(plan.claims[0]).toMatchObject({ ip: '10.244.9.12', stickyKey: 'default/web/2' });
    const r3 = reviewWith('create-pod-statefulset', { annotations: list, podName: 'web-3' });
    expect(() => decide(fromReview(r3))).toThrow(/has 3 IPv4 addresses, so ordinal 3 has none/);
  });

  it('splits a dual-stack ip-list by family', () => {
    const list = { 'podlease.io/ip-list': '10.244.9.10,fd00:10::110,10.244.9.11,fd00:10::111' };
    const r = reviewWith('create-pod-statefulset', { annotations: list, podName: 'web-1' });
    const plan = lease(decide(fromReview(r, { pools: dual })));
    expect(plan.claims.map(c => c.ip)).toEqual(['10.244.9.11', 'fd00:10::111']);
  });

  it('answers a clear 400 when a pod that is not a StatefulSet pod asks for sticky or ip-list', () => {
    const sticky = (): Plan =>
      decide(input('create-pod-deployment', { 'podlease.io/sticky': 'true' }));
    expect(sticky).toThrow(BadAnnotationError);
    expect(sticky).toThrow(
      /podlease.io\/sticky applies to StatefulSet pods only.*no ownerReference of kind StatefulSet/,
    );
    expect(() =>
      decide(input('create-pod-deployment', { 'podlease.io/ip-list': '10.244.9.10' })),
    ).toThrow(/ip-list applies to StatefulSet pods only/);
  });

  it('validates when-scaled and when-deleted', () => {
    expect(() =>
      decide(
        input('create-pod-statefulset', {
          'podlease.io/sticky': 'true',
          'podlease.io/when-scaled': 'Keep',
        }),
      ),
    ).toThrow(/when-scaled: "Keep" is not one of Retain, Delete/);
  });

  it('refuses ip-list together with static-ip', () => {
    expect(() =>
      decide(
        input('create-pod-statefulset', {
          'podlease.io/ip-list': '10.244.9.10',
          'podlease.io/static-ip': '10.244.9.10',
        }),
      ),
    ).toThrow(/both set/);
  });
});

/**
 * `web-0`'s identity, forged: a pod made by an ordinary user, with web-0's ownerReference and
 * pod-index label copied, must not get web-0's sticky address (nor void web-0's lease).
 */
describe('decide: StatefulSet identity must be proven for sticky addresses', () => {
  const forged = (
    edit: { name?: string; username?: string; annotations?: Record<string, string> } = {},
  ): ReviewJson => {
    const r = reviewWith('create-pod-statefulset', {
      annotations: edit.annotations ?? { 'podlease.io/sticky': 'true' },
    });
    const pod = r.request.object!;
    pod.metadata.name = edit.name ?? 'evil';
    delete pod.metadata.generateName;
    pod.metadata.labels = { 'apps.kubernetes.io/pod-index': '0' };
    r.request.name = pod.metadata.name;
    r.request.userInfo = { username: edit.username ?? 'alice', groups: ['system:authenticated'] };
    return r;
  };
  const thrown = (r: ReviewJson, more: Partial<DecisionInput> = {}): unknown => {
    try {
      decide(fromReview(r, more));
    } catch (err) {
      return err;
    }
    throw new Error('decide did not throw');
  };

  it('denies the forged pod "evil" (alice, copied ownerReference, pod-index 0), naming the check', () => {
    const err = thrown(forged());
    expect(err).toBeInstanceOf(BadAnnotationError);
    expect((err as BadAnnotationError).status).toBe(400);
    expect((err as Error).message).toMatch(
      /^podlease.io\/sticky: pod "evil" is not named web-<ordinal>, as every pod of StatefulSet web is/,
    );
    const list = forged({ annotations: { 'podlease.io/ip-list': '10.244.9.10' } });
    expect((thrown(list) as Error).message).toMatch(
      /^podlease.io\/ip-list: pod "evil" is not named web-<ordinal>/,
    );
  });

  it('denies a pod named web-0 by an ordinary user with 403, naming the creator check', () => {
    const err = thrown(forged({ name: 'web-0' }));
    expect(err).toBeInstanceOf(StatefulSetCreatorError);
    expect((err as StatefulSetCreatorError).status).toBe(403);
    expect((err as Error).message).toBe(
      'podlease.io/sticky: pod "web-0" was created by "alice", which may not create StatefulSet ' +
        'pods (allowed: system:serviceaccount:kube-system:statefulset-controller, ' +
        'system:kube-controller-manager); sticky addresses are for pods made by the StatefulSet ' +
        'controller; if the controller runs as another user, set --statefulset-creators',
    );
    expect((thrown(forged({ name: 'web-0', username: '' })) as Error).message).toMatch(
      /created by an unknown user/,
    );
  });

  it('allows a real StatefulSet pod from either default creator', () => {
    for (const username of [
      'system:serviceaccount:kube-system:statefulset-controller',
      'system:kube-controller-manager',
    ]) {
      const r = reviewWith('create-pod-statefulset', { podName: 'web-3' });
      r.request.userInfo.username = username;
      expect(lease(decide(fromReview(r))).claims[0]?.stickyKey).toBe('default/web/3');
    }
  });

  it('honours a configured creator list (--statefulset-creators)', () => {
    const creators = { statefulSetCreators: ['system:serviceaccount:ops:my-sts-controller'] };
    const r = forged({ name: 'web-0', username: 'system:serviceaccount:ops:my-sts-controller' });
    expect(lease(decide(fromReview(r, creators))).claims[0]?.stickyKey).toBe('default/web/0');
    const real = loadReview('create-pod-statefulset');
    expect(thrown(real, creators)).toBeInstanceOf(StatefulSetCreatorError);
  });

  it('denies a pod whose pod-index label disagrees with its name (400)', () => {
    const r = reviewWith('create-pod-statefulset', { podName: 'web-0' });
    r.request.object!.metadata.labels!['apps.kubernetes.io/pod-index'] = '1';
    const err = thrown(r);
    expect(err).toBeInstanceOf(BadAnnotationError);
    expect((err as Error).message).toMatch(
      /^podlease.io\/sticky: the apps.kubernetes.io\/pod-index label says 1 but the name "web-0" says ordinal 0/,
    );
  });

  it('reports a malformed pod-index label as invalid, not as absent', () => {
    for (const label of ['-1', 'abc', '1e21', '01', '']) {
      const r = reviewWith('create-pod-statefulset', { podName: 'web-1' });
      r.request.object!.metadata.labels!['apps.kubernetes.io/pod-index'] = label;
      expect((thrown(r) as Error).message).toContain(
        `the apps.kubernetes.io/pod-index label ${JSON.stringify(label)} is not a valid ordinal`,
      );
    }
  });

  it('counts only the controller ownerReference, of kind StatefulSet and apiVersion apps/v1', () => {
    const r = forged({ name: 'web-0', username: 'system:kube-controller-manager' });
    const owners = r.request.object!.metadata.ownerReferences!;
    expect(lease(decide(fromReview(r))).claims[0]?.stickyKey).toBe('default/web/0');
    for (const controller of [false, undefined]) {
      owners[0]!.controller = controller;
      const err = thrown(r);
      expect(err).toBeInstanceOf(BadAnnotationError);
      expect((err as Error).message).toContain(
        'its ownerReference to StatefulSet web is not the controller (only the ownerReference ' +
          'with controller: true counts)',
      );
    }
    // A non-controller StatefulSet reference next to another controller does not count either.
    owners.push({
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      name: 'rs',
      uid: 'u',
      controller: true,
    });
    expect((thrown(r) as Error).message).toContain('is not the controller');
    r.request.object!.metadata.ownerReferences = [
      { apiVersion: 'apps/v1beta2', kind: 'StatefulSet', name: 'web', uid: 'u', controller: true },
    ];
    expect((thrown(r) as Error).message).toContain('has apiVersion "apps/v1beta2", not apps/v1');
  });
});
