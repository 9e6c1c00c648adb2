// podlease in the loop: the real API server calls a local `podlease serve` (Redis store) through a
// MutatingWebhookConfiguration and a ValidatingWebhookConfiguration, and the kubelet stand-in runs
// the bridge plugin with the podlease IPAM plugin (dist/cni/podlease) in a netns per pod.
//
// This instance runs without the controller (`--controller off`; test/e2e/controller.test.ts runs
// with it), so leases stay pending: pool sizes here allow for that.
/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- @kubernetes/client-node's
   generated models are classes without behaviour; its API is meant to take object literals. */
import { randomBytes } from 'node:crypto';

import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { type Kubelet, podleaseIpam, startKubelet } from './cluster/kubelet.js';
import { waitUntil } from './cluster/wait.js';
import { apiErrorCode, apiErrorMessage, type Podlease, startPodlease } from './podlease.js';
import {
  annotation,
  eth0Inet,
  inSubnet,
  isReady,
  OWNED,
  pingFrom,
  podleaseAnnotations,
} from './pods.js';

const skip = inject('e2eSkip');
if (skip) console.warn(`\n!! SKIPPING podlease e2e: ${skip}\n`);

const run = randomBytes(3).toString('hex');
const POOL = { name: `e2e-${run}`, cidr: '10.246.0.0/24', gateway: '10.246.0.1', default: true };
// A /29 with a gateway: .2 to .6, five addresses.
const TINY = { name: `tiny-${run}`, cidr: '10.246.1.0/29', gateway: '10.246.1.1' };
const TINY_SIZE = 5;
const CONTAINER = { name: 'app', image: 'registry.invalid/never-pulled:1' };
const MERGE_PATCH = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const JSON_PATCH = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch);
const POD_WAIT_MS = 180_000;

describe.skipIf(skip !== '')('podlease in the loop (webhook + CNI IPAM + Redis)', () => {
  const namespace = `pl-${run}`;
  const tinyNamespace = `pl-tiny-${run}`;
  let core: k8s.CoreV1Api;
  let apps: k8s.AppsV1Api;
  let kubelet: Kubelet;
  let podlease: Podlease;
  /** Whatever beforeAll started, stopped in this order (podlease before the kubelet). */
  const cleanUp: (() => Promise<void>)[] = [];

  const listPods = async (ns: string, labelSelector: string): Promise<k8s.V1Pod[]> =>
    (await core.listNamespacedPod({ namespace: ns, labelSelector })).items;

  /** Waits for exactly `count` Ready pods matching the selector (and no others). */
  const readyPods = async (
    ns: string,
    labelSelector: string,
    count: number,
  ): Promise<k8s.V1Pod[]> => {
    try {
      return await waitUntil(
        `${count} Ready pods ${labelSelector} in ${ns}`,
        async () => {
          const pods = await listPods(ns, labelSelector);
          const ready = pods.filter(isReady);
          return ready.length === count && pods.length === count ? ready : undefined;
        },
        POD_WAIT_MS,
      );
    } catch (err) {
      // What the pods, the kubelet stand-in and podlease saw, for the failure message.
      const pods = (await listPods(ns, labelSelector)).map(
        p =>
          `${p.metadata?.name ?? ''} ${p.status?.phase ?? ''} ready=${String(isReady(p))} ` +
          `deleting=${String(p.metadata?.deletionTimestamp !== undefined)} ip=${annotation(p, OWNED.ip) ?? '-'}`,
      );
      throw new Error(
        `${String(err)}\npods:\n  ${pods.join('\n  ')}\nkubelet failures: ` +
          `${JSON.stringify(kubelet.failures(), null, 2)}\npodlease serve log:\n${podlease.logTail(20)}`,
        { cause: err },
      );
    }
  };

  /** Checks what every podlease pod must show; returns its address. */
  const expectLeasedAndWired = async (
    pod: k8s.V1Pod,
    pool: { name: string; cidr: string; gateway: string },
  ): Promise<string> => {
    const key = `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
    const ip = annotation(pod, OWNED.ip) ?? '';
    expect(inSubnet(ip, pool.cidr), `${key}: ${ip} in ${pool.cidr}`).toBe(true);
    expect(ip).not.toBe(pool.gateway);
    expect(annotation(pod, OWNED.cidr)).toBe(pool.cidr);
    expect(annotation(pod, OWNED.gateway)).toBe(pool.gateway);
    expect(annotation(pod, OWNED.lease)).toMatch(new RegExp(`^${pool.name}/[0-9A-Z]{26}$`));
    expect(pod.status?.podIP).toBe(ip);
    expect(pod.status?.podIPs).toEqual([{ ip }]);
    const netns = kubelet.pods().get(key)?.netns;
    expect(netns, `${key} has a netns`).toBeDefined();
    const prefix = pool.cidr.split('/')[1] ?? '';
    expect(await eth0Inet(netns ?? '')).toEqual([`${ip}/${prefix}`]);
    return ip;
  };

  beforeAll(async () => {
    const kubeconfigPath = inject('kubeconfigPath');
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
    apps = kc.makeApiClient(k8s.AppsV1Api);
    podlease = await startPodlease({
      name: `pl-${run}`,
      kubeconfigPath,
      caCertPath: inject('caCertPath'),
      caKeyPath: inject('caKeyPath'),
      redisUrl: inject('e2eRedisUrl'),
      pools: [POOL, TINY],
    });
    // podlease first: it deletes the namespaces and waits for the kubelet to finish the pods.
    cleanUp.push(() => podlease.stop());
    // Only this namespace gets wired: the bridge plugin gives its bridge one gateway per family,
    // so pods of the tiny pool (another subnet) could not share it; they stay unscheduled.
    kubelet = await startKubelet({
      kubeconfigPath,
      namespace,
      ipam: podleaseIpam(kubeconfigPath),
    });
    cleanUp.push(() => kubelet.stop());
    await podlease.register();
    await podlease.createNamespace(namespace);
  });

  afterAll(async () => {
    for (const stop of cleanUp) await stop();
  });

  it('gives a Deployment of 20 replicas 20 distinct pool addresses, each on eth0 in its netns', async () => {
    const labels = { app: 'web' };
    await apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: 'web', labels },
        spec: {
          replicas: 20,
          selector: { matchLabels: labels },
          template: { metadata: { labels }, spec: { containers: [CONTAINER] } },
        },
      },
    });
    const pods = await readyPods(namespace, 'app=web', 20);
    const ips: string[] = [];
    for (const pod of pods) {
      ips.push(await expectLeasedAndWired(pod, POOL));
      // The pod named no pool: podlease filled in the one it used.
      expect(annotation(pod, OWNED.pool)).toBe(POOL.name);
    }
    expect(new Set(ips).size).toBe(20);

    // The store agrees: one pending lease per pod, under the id written into the pod.
    const leases = await podlease.leases(POOL.name);
    for (const pod of pods) {
      const [, id] = (annotation(pod, OWNED.lease) ?? '').split('/');
      const lease = leases.find(l => l.id === id);
      expect(lease).toMatchObject({
        ip: annotation(pod, OWNED.ip),
        namespace,
        state: 'pending',
        generateName: pod.metadata?.generateName,
      });
    }
    const stats = (await podlease.pools()).find(p => p.name === POOL.name)?.stats;
    expect(stats?.leased).toBe(20);
    expect(stats?.size).toBe(253); // a /24 less network, broadcast and gateway
    expect(kubelet.failures()).toEqual([]);
  });

  it('lets two pods on the bridge reach each other', async () => {
    const [a, b] = await readyPods(namespace, 'app=web', 20);
    const entry = (pod: k8s.V1Pod | undefined): { netns: string; ip: string } => {
      const running = kubelet.pods().get(`${namespace}/${pod?.metadata?.name ?? ''}`);
      return { netns: running?.netns ?? '', ip: running?.ips[0] ?? '' };
    };
    const [from, to] = [entry(a), entry(b)];
    expect(from.ip).not.toBe(to.ip);
    const there = await pingFrom(from.netns, to.ip);
    expect(there.ok, there.output).toBe(true);
    expect(there.output).toMatch(/1 packets transmitted, 1 received/);
    const back = await pingFrom(to.netns, from.ip);
    expect(back.ok, back.output).toBe(true);
  });

  it('denies a user editing or removing podlease.io/ip on a running pod', async () => {
    const [pod] = await readyPods(namespace, 'app=web', 20);
    const name = pod?.metadata?.name ?? '';
    const ip = annotation(pod ?? {}, OWNED.ip) ?? '';
    const other = ip === '10.246.0.250' ? '10.246.0.251' : '10.246.0.250';
    const edit = (dryRun?: string): Promise<k8s.V1Pod> =>
      core.patchNamespacedPod(
        {
          name,
          namespace,
          dryRun,
          body: { metadata: { annotations: { [OWNED.ip]: other } } },
        },
        MERGE_PATCH,
      );
    // The validating configuration was registered with the mutating one; wait until it is live.
    const denial = await waitUntil('the validating webhook to deny', async () => {
      try {
        await edit('All');
        return undefined;
      } catch (err) {
        return err;
      }
    });
    expect(apiErrorMessage(denial)).toContain('podlease:');

    let caught: unknown;
    try {
      await edit();
    } catch (err) {
      caught = err;
    }
    expect(apiErrorCode(caught)).toBe(403);
    const message = apiErrorMessage(caught);
    expect(message).toContain('admission webhook "validate.podlease.io" denied the request');
    expect(message).toContain(
      'podlease: podlease.io/ip is set by podlease and cannot be changed or removed on a running pod',
    );

    let removal: unknown;
    try {
      await core.patchNamespacedPod(
        {
          name,
          namespace,
          body: [{ op: 'remove', path: '/metadata/annotations/podlease.io~1ip' }],
        },
        JSON_PATCH,
      );
    } catch (err) {
      removal = err;
    }
    expect(apiErrorCode(removal)).toBe(403);
    expect(apiErrorMessage(removal)).toContain('podlease: podlease.io/ip is set by podlease');

    // Other edits go through, and the address is what it was.
    const labelled = await core.patchNamespacedPod(
      { name, namespace, body: { metadata: { labels: { touched: 'yes' } } } },
      MERGE_PATCH,
    );
    expect(labelled.metadata?.labels?.touched).toBe('yes');
    expect(annotation(labelled, OWNED.ip)).toBe(ip);
  });

  it('leases nothing for a server-side dry-run create (dryRun: All)', async () => {
    const poolsBefore = await podlease.pools();
    const leasesBefore = await podlease.leases();
    const created = await core.createNamespacedPod({
      namespace,
      dryRun: 'All',
      body: {
        metadata: { generateName: 'dry-', labels: { app: 'dry' } },
        spec: { containers: [CONTAINER] },
      },
    });
    // The API server went through admission (defaults applied) but podlease patched nothing.
    expect(created.metadata?.generateName).toBe('dry-');
    expect(created.spec?.serviceAccountName).toBe('default');
    expect(podleaseAnnotations(created)).toEqual({});
    expect(await podlease.pools()).toEqual(poolsBefore);
    expect(await podlease.leases()).toEqual(leasesBefore);
    expect(await listPods(namespace, 'app=dry')).toEqual([]);

    // A dry run still meets every check that needs no write: podlease saw it and denies it.
    let denied: unknown;
    try {
      await core.createNamespacedPod({
        namespace,
        dryRun: 'All',
        body: {
          metadata: { generateName: 'dry-', annotations: { 'podlease.io/static-ip': '10.99.0.7' } },
          spec: { containers: [CONTAINER] },
        },
      });
    } catch (err) {
      denied = err;
    }
    expect(apiErrorCode(denied)).toBe(400);
    expect(apiErrorMessage(denied)).toContain(
      `podlease: podlease.io/static-ip: 10.99.0.7 is not allocatable in pool "${POOL.name}"`,
    );
    expect(await podlease.leases()).toEqual(leasesBefore);
  });

  it('leaves a hostNetwork pod untouched', async () => {
    const leasesBefore = await podlease.leases();
    const created = await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'host', labels: { app: 'host' } },
        spec: { hostNetwork: true, containers: [CONTAINER] },
      },
    });
    expect(podleaseAnnotations(created)).toEqual({});
    const [pod] = await readyPods(namespace, 'app=host', 1);
    expect(podleaseAnnotations(pod ?? {})).toEqual({});
    const running = kubelet.pods().get(`${namespace}/host`);
    expect(running).toMatchObject({ netns: undefined, ips: [] });
    expect(await podlease.leases()).toEqual(leasesBefore);
  });

  it('keeps each ordinal of a sticky StatefulSet on its address across pod deletion and scale down/up', async () => {
    const labels = { app: 'sticky' };
    const sts = 'sticky';
    await apps.createNamespacedStatefulSet({
      namespace,
      body: {
        metadata: { name: sts, labels },
        spec: {
          replicas: 3,
          serviceName: sts,
          podManagementPolicy: 'Parallel',
          selector: { matchLabels: labels },
          template: {
            metadata: { labels, annotations: { 'podlease.io/sticky': 'true' } },
            spec: { containers: [CONTAINER] },
          },
        },
      },
    });
    const snapshot = async (
      count: number,
    ): Promise<Map<string, { ip: string; lease: string; uid: string }>> => {
      const pods = await readyPods(namespace, 'app=sticky', count);
      const out = new Map<string, { ip: string; lease: string; uid: string }>();
      for (const pod of pods) {
        const ip = await expectLeasedAndWired(pod, POOL);
        out.set(pod.metadata?.name ?? '', {
          ip,
          lease: annotation(pod, OWNED.lease) ?? '',
          uid: pod.metadata?.uid ?? '',
        });
      }
      return out;
    };
    const first = await snapshot(3);
    expect([...first.keys()].sort()).toEqual(['sticky-0', 'sticky-1', 'sticky-2']);
    expect(new Set([...first.values()].map(v => v.ip)).size).toBe(3);

    // The reservations are keyed by <namespace>/<statefulset>/<ordinal>.
    const leases = await podlease.leases(POOL.name);
    for (const [name, { ip, lease }] of first) {
      const ordinal = name.split('-')[1] ?? '';
      expect(leases.find(l => `${l.pool}/${l.id}` === lease)).toMatchObject({
        ip,
        stickyKey: `${namespace}/${sts}/${ordinal}`,
        name,
      });
    }

    // Delete every pod: the StatefulSet controller recreates them, each with its old address.
    await core.deleteCollectionNamespacedPod({ namespace, labelSelector: 'app=sticky' });
    const oldUids = new Set([...first.values()].map(v => v.uid));
    await waitUntil(
      'all sticky pods replaced',
      async () => {
        const pods = await listPods(namespace, 'app=sticky');
        const fresh = pods.filter(p => !oldUids.has(p.metadata?.uid ?? '') && isReady(p));
        return fresh.length === 3 && pods.length === 3 ? true : undefined;
      },
      POD_WAIT_MS,
    );
    const recreated = await snapshot(3);
    for (const [name, before] of first) {
      const after = recreated.get(name);
      expect(after?.uid).not.toBe(before.uid);
      expect(after?.ip, `${name} keeps ${before.ip}`).toBe(before.ip);
      expect(after?.lease).not.toBe(before.lease); // same address, new lease id
    }

    // Scale down to 1 and back up to 3: ordinals 1 and 2 come back on their addresses.
    const scale = (replicas: number): Promise<k8s.V1StatefulSet> =>
      apps.patchNamespacedStatefulSet(
        { name: sts, namespace, body: { spec: { replicas } } },
        MERGE_PATCH,
      );
    await scale(1);
    await readyPods(namespace, 'app=sticky', 1);
    const rest = await listPods(namespace, 'app=sticky');
    expect(rest.map(p => p.metadata?.name)).toEqual(['sticky-0']);
    await scale(3);
    const scaledUp = await snapshot(3);
    for (const [name, before] of first) {
      expect(scaledUp.get(name)?.ip, `${name} keeps ${before.ip} after scaling`).toBe(before.ip);
    }
    expect(scaledUp.get('sticky-0')?.uid).toBe(recreated.get('sticky-0')?.uid);
    expect(kubelet.failures()).toEqual([]);
  });

  it("shows podlease's exhausted-pool message in the ReplicaSet's FailedCreate events", async () => {
    await podlease.createNamespace(tinyNamespace, { 'podlease.io/pool': TINY.name });
    // podlease serve reads namespace annotations from a watch: the first pod shows when it has.
    const first = await waitUntil('a pod drawn from the namespace pool', async () => {
      const pod = await core.createNamespacedPod({
        namespace: tinyNamespace,
        body: {
          metadata: { generateName: 'first-', labels: { app: 'first' } },
          spec: { containers: [CONTAINER] },
        },
      });
      if (annotation(pod, OWNED.pool) === TINY.name) return pod;
      await core.deleteNamespacedPod({ namespace: tinyNamespace, name: pod.metadata?.name ?? '' });
      return undefined;
    });
    expect(inSubnet(annotation(first, OWNED.ip) ?? '', TINY.cidr)).toBe(true);

    const labels = { app: 'full' };
    const replicas = TINY_SIZE + 1;
    await apps.createNamespacedDeployment({
      namespace: tinyNamespace,
      body: {
        metadata: { name: 'full', labels },
        spec: {
          replicas,
          selector: { matchLabels: labels },
          template: { metadata: { labels }, spec: { containers: [CONTAINER] } },
        },
      },
    });
    const expected = `podlease: pool "${TINY.name}" is exhausted: ${TINY_SIZE} of ${TINY_SIZE} addresses leased`;
    const event = await waitUntil(
      'a FailedCreate event with the podlease message',
      async () => {
        const events = await core.listNamespacedEvent({
          namespace: tinyNamespace,
          fieldSelector: 'reason=FailedCreate',
        });
        return events.items.find(e => e.message?.includes(expected));
      },
      POD_WAIT_MS,
    );
    expect(event.involvedObject.kind).toBe('ReplicaSet');
    expect(event.involvedObject.name).toMatch(/^full-/);
    expect(event.type).toBe('Warning');
    expect(event.message).toContain('admission webhook "mutate.podlease.io" denied the request');

    // The ReplicaSet reports the failure as a condition too.
    const rsName = event.involvedObject.name ?? '';
    const condition = await waitUntil('ReplicaFailure condition on the ReplicaSet', async () => {
      const rs = await apps.readNamespacedReplicaSet({ namespace: tinyNamespace, name: rsName });
      return rs.status?.conditions?.find(c => c.type === 'ReplicaFailure');
    });
    expect(condition).toMatchObject({ status: 'True', reason: 'FailedCreate' });
    expect(condition.message).toContain(expected);

    // The pool's five addresses went to the first pod and four of the Deployment's (which stay
    // unscheduled: the kubelet stand-in only wires the main namespace).
    const pods = await waitUntil('4 pods of the Deployment', async () => {
      const list = await listPods(tinyNamespace, 'app=full');
      return list.length === TINY_SIZE - 1 ? list : undefined;
    });
    const ips = [first, ...pods].map(p => annotation(p, OWNED.ip) ?? '');
    expect(new Set(ips).size).toBe(TINY_SIZE);
    for (const pod of pods) {
      expect(inSubnet(annotation(pod, OWNED.ip) ?? '', TINY.cidr)).toBe(true);
      expect(annotation(pod, OWNED.ip)).not.toBe(TINY.gateway);
      expect(annotation(pod, OWNED.pool)).toBe(TINY.name);
      expect(annotation(pod, OWNED.cidr)).toBe(TINY.cidr);
    }
    const stats = (await podlease.pools()).find(p => p.name === TINY.name)?.stats;
    expect(stats).toMatchObject({ size: TINY_SIZE, leased: TINY_SIZE, free: 0 });

    // A dry run is denied the same way: "pool exhausted right now" needs no write.
    let denied: unknown;
    try {
      await core.createNamespacedPod({
        namespace: tinyNamespace,
        dryRun: 'All',
        body: { metadata: { generateName: 'dry-' }, spec: { containers: [CONTAINER] } },
      });
    } catch (err) {
      denied = err;
    }
    expect(apiErrorCode(denied)).toBe(403);
    expect(apiErrorMessage(denied)).toContain(expected);
  });
});
