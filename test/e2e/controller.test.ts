// The lease lifecycle controller in the loop: `podlease serve --controller on` on its own
// redis-server (this file FLUSHALLs it), the real API server and controller-manager, and the
// kubelet stand-in wiring pods with the podlease IPAM plugin. Every case watches what the store
// says through the CLI (`podlease leases`, `podlease pools`), as an operator would.
/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- @kubernetes/client-node's
   generated models are classes without behaviour; its API is meant to take object literals. */
import { randomBytes } from 'node:crypto';
import { createConnection } from 'node:net';

import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { startRedisServer, type RedisServer } from '../../scripts/lib/redis-server.mjs';
import { type Kubelet, podleaseIpam, startKubelet } from './cluster/kubelet.js';
import { waitUntil } from './cluster/wait.js';
import {
  apiErrorCode,
  apiErrorMessage,
  type LeaseJson,
  type Podlease,
  startPodlease,
} from './podlease.js';
import { annotation, isReady, OWNED } from './pods.js';

const skip = inject('e2eSkip');

const run = randomBytes(3).toString('hex');
const POOL = { name: `ctl-${run}`, cidr: '10.247.0.0/24', gateway: '10.247.0.1', default: true };
const CONTAINER = { name: 'app', image: 'registry.invalid/never-pulled:1' };
const MERGE_PATCH = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const WAIT_MS = 60_000;
const LEASE_TTL = '3s';

/** Sends one RESP command to 127.0.0.1:port and resolves with the first reply line. */
const redisCommand = (port: number, ...args: string[]): Promise<string> =>
  new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const wire = `*${args.length}\r\n${args.map(a => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
    socket.setTimeout(5_000, () => socket.destroy(new Error('redis did not answer')));
    socket.once('error', reject);
    socket.once('data', data => {
      socket.end();
      resolve(data.toString('utf8').split('\r\n')[0] ?? '');
    });
    socket.write(wire);
  });

describe.skipIf(skip !== '')('the lease controller (podlease serve --controller on)', () => {
  const namespace = `ctl-${run}`;
  const quotaNamespace = `ctl-quota-${run}`;
  let core: k8s.CoreV1Api;
  let apps: k8s.AppsV1Api;
  let kubelet: Kubelet;
  let podlease: Podlease;
  let redis: RedisServer;
  const cleanUp: (() => Promise<void> | void)[] = [];

  const leases = (): Promise<LeaseJson[]> => podlease.leases(POOL.name);
  const stats = async (): Promise<{ leased: number; reserved: number; pending: number }> => {
    const pool = (await podlease.pools()).find(p => p.name === POOL.name);
    return pool?.stats ?? { leased: -1, reserved: -1, pending: -1 };
  };
  const leaseId = (pod: k8s.V1Pod): string =>
    (annotation(pod, OWNED.lease) ?? '').split('/')[1] ?? '';

  const failureContext = async (): Promise<string> => {
    const pods = (await core.listNamespacedPod({ namespace })).items.map(
      p =>
        `${p.metadata?.name ?? ''} ${p.status?.phase ?? ''} ip=${annotation(p, OWNED.ip) ?? '-'}`,
    );
    return `pods:\n  ${pods.join('\n  ')}\nleases:\n  ${(await leases()).map(l => `${l.ip} ${l.state} ${l.namespace}/${l.name ?? ''}`).join('\n  ')}\npodlease serve log:\n${podlease.logTail(30)}`;
  };

  const eventually = async <T>(
    what: string,
    check: () => Promise<T | undefined>,
    ms = WAIT_MS,
  ): Promise<T> => {
    try {
      return await waitUntil(what, check, ms, 200);
    } catch (err) {
      throw new Error(`${String(err)}\n${await failureContext()}`, { cause: err });
    }
  };

  const readyPod = (name: string): Promise<k8s.V1Pod> =>
    eventually(`pod ${name} Ready`, async () => {
      const pod = await core.readNamespacedPod({ namespace, name }).catch(() => undefined);
      return pod !== undefined && isReady(pod) ? pod : undefined;
    });

  const createPod = async (
    name: string,
    annotations: Record<string, string> = {},
  ): Promise<k8s.V1Pod> => {
    await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name, annotations },
        spec: { containers: [CONTAINER], restartPolicy: 'Never' },
      },
    });
    return readyPod(name);
  };

  const bound = (pod: k8s.V1Pod): Promise<LeaseJson> =>
    eventually(`lease of ${pod.metadata?.name ?? ''} bound`, async () => {
      const l = (await leases()).find(x => x.id === leaseId(pod));
      return l?.state === 'bound' ? l : undefined;
    });

  const gone = (ip: string): Promise<true> =>
    eventually(`no lease on ${ip}`, async () =>
      (await leases()).some(l => l.ip === ip) ? undefined : true,
    );

  const deletePod = async (name: string): Promise<void> => {
    await core.deleteNamespacedPod({ namespace, name });
    await eventually(`pod ${name} gone`, async () =>
      (await core.readNamespacedPod({ namespace, name }).then(
        () => false,
        () => true,
      ))
        ? true
        : undefined,
    );
  };

  const statefulSet = (
    name: string,
    replicas: number,
    annotations: Record<string, string>,
  ): k8s.V1StatefulSet => ({
    metadata: { name },
    spec: {
      replicas,
      serviceName: name,
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: { app: name } },
      template: {
        metadata: {
          labels: { app: name },
          annotations: { 'podlease.io/sticky': 'true', ...annotations },
        },
        spec: { containers: [CONTAINER] },
      },
    },
  });

  const stsIps = async (name: string, replicas: number): Promise<string[]> =>
    eventually(`${replicas} Ready pods of StatefulSet ${name}`, async () => {
      const pods = (await core.listNamespacedPod({ namespace, labelSelector: `app=${name}` }))
        .items;
      const ready = pods.filter(p => isReady(p) && p.metadata?.deletionTimestamp === undefined);
      if (ready.length !== replicas || pods.length !== replicas) return undefined;
      return ready
        .sort((a, b) =>
          (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '', 'en', { numeric: true }),
        )
        .map(p => annotation(p, OWNED.ip) ?? '');
    });

  const scale = (name: string, replicas: number): Promise<k8s.V1StatefulSet> =>
    apps.patchNamespacedStatefulSet({ namespace, name, body: { spec: { replicas } } }, MERGE_PATCH);

  interface ReservationJson {
    readonly pool: string;
    readonly key: string;
    readonly ip: string;
    readonly lease?: string;
  }
  const reservedFor = async (sts: string): Promise<ReservationJson[]> =>
    ((await podlease.cli(['reservations', '--pool', POOL.name])) as ReservationJson[]).filter(r =>
      r.key.startsWith(`${namespace}/${sts}/`),
    );
  const leasedFor = async (sts: string): Promise<LeaseJson[]> =>
    (await leases()).filter(l => l.stickyKey?.startsWith(`${namespace}/${sts}/`) === true);

  beforeAll(async () => {
    const kubeconfigPath = inject('kubeconfigPath');
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
    apps = kc.makeApiClient(k8s.AppsV1Api);
    redis = await startRedisServer({ prefix: 'podlease-e2e-ctl-redis-' });
    cleanUp.push(() => {
      redis.stop();
    });
    podlease = await startPodlease({
      name: `ctl-${run}`,
      kubeconfigPath,
      caCertPath: inject('caCertPath'),
      caKeyPath: inject('caKeyPath'),
      redisUrl: redis.url,
      pools: [POOL],
      controller: true,
      serveArgs: ['--lease-ttl', LEASE_TTL],
    });
    cleanUp.unshift(() => podlease.stop());
    kubelet = await startKubelet({ kubeconfigPath, namespace, ipam: podleaseIpam(kubeconfigPath) });
    cleanUp.splice(1, 0, () => kubelet.stop());
    await podlease.register();
    await podlease.createNamespace(namespace);
  });

  afterAll(async () => {
    for (const stop of cleanUp) await stop();
  });

  it('binds a pod’s lease to its UID and gives the address back when the pod is deleted', async () => {
    const pod = await createPod('solo');
    const lease = await bound(pod);
    expect(lease.ip).toBe(annotation(pod, OWNED.ip));
    expect(lease.name).toBe('solo');
    const before = await stats();
    await deletePod('solo');
    await gone(lease.ip);
    expect((await stats()).leased).toBe(before.leased - 1);
  });

  it('gives a Succeeded pod’s address back while its object remains', async () => {
    const pod = await createPod('job-like');
    const lease = await bound(pod);
    await core.patchNamespacedPodStatus(
      { namespace, name: 'job-like', body: { status: { phase: 'Succeeded' } } },
      MERGE_PATCH,
    );
    await gone(lease.ip);
    const still = await core.readNamespacedPod({ namespace, name: 'job-like' });
    expect(still.status?.phase).toBe('Succeeded');
    expect(annotation(still, OWNED.ip)).toBe(lease.ip);
    await core.deleteNamespacedPod({ namespace, name: 'job-like' });
  });

  it('keeps a sticky pod’s address when it is deleted and recreated, and frees ordinals 1 and 2 on scale 3→1 under when-scaled: Delete', async () => {
    await apps.createNamespacedStatefulSet({
      namespace,
      body: statefulSet('db', 3, { 'podlease.io/when-scaled': 'Delete' }),
    });
    const ips = await stsIps('db', 3);
    expect(new Set(ips).size).toBe(3);
    await core.deleteNamespacedPod({ namespace, name: 'db-0' });
    await eventually('db-0 recreated', async () => {
      const pod = await core.readNamespacedPod({ namespace, name: 'db-0' }).catch(() => undefined);
      return pod !== undefined &&
        isReady(pod) &&
        pod.metadata?.deletionTimestamp === undefined &&
        leaseId(pod) !== ''
        ? pod
        : undefined;
    });
    expect(await stsIps('db', 3)).toEqual(ips);

    await scale('db', 1);
    await stsIps('db', 1);
    await gone(ips[1] ?? '');
    await gone(ips[2] ?? '');
    const left = await reservedFor('db');
    expect(left.map(l => l.ip)).toEqual([ips[0]]);
  });

  it('keeps scaled-away ordinals under when-scaled: Retain and gives them back on scale-up', async () => {
    await apps.createNamespacedStatefulSet({ namespace, body: statefulSet('kv', 3, {}) });
    const ips = await stsIps('kv', 3);
    await scale('kv', 1);
    await stsIps('kv', 1);
    // The pods of ordinals 1 and 2 are gone; their reservations hold the addresses.
    await eventually('kv-1 and kv-2 released but reserved', async () =>
      (await leasedFor('kv')).length === 1 ? true : undefined,
    );
    expect((await reservedFor('kv')).map(r => r.ip).sort()).toEqual([...ips].sort());
    const s = await stats();
    expect(s.reserved).toBeGreaterThanOrEqual(4); // db-0 and kv-0..2
    await scale('kv', 3);
    expect(await stsIps('kv', 3)).toEqual(ips);
  });

  it('drops a deleted StatefulSet’s reservations, but keeps them under when-deleted: Retain for the one recreated', async () => {
    const kvIps = await stsIps('kv', 3);
    await apps.deleteNamespacedStatefulSet({ namespace, name: 'kv' });
    for (const ip of kvIps) await gone(ip);

    await apps.createNamespacedStatefulSet({
      namespace,
      body: statefulSet('keep', 2, { 'podlease.io/when-deleted': 'Retain' }),
    });
    const ips = await stsIps('keep', 2);
    await apps.deleteNamespacedStatefulSet({ namespace, name: 'keep' });
    await eventually('keep pods gone', async () =>
      (await core.listNamespacedPod({ namespace, labelSelector: 'app=keep' })).items.length === 0
        ? true
        : undefined,
    );
    // Give the controller a reconcile pass (3 s) to do anything it would do.
    await new Promise(r => setTimeout(r, 4_000));
    expect((await reservedFor('keep')).map(l => l.ip).sort()).toEqual([...ips].sort());
    await apps.createNamespacedStatefulSet({
      namespace,
      body: statefulSet('keep', 2, { 'podlease.io/when-deleted': 'Retain' }),
    });
    expect(await stsIps('keep', 2)).toEqual(ips);
  });

  it('expires the pending lease of a pod a ResourceQuota rejected after mutation', async () => {
    await podlease.createNamespace(quotaNamespace);
    await core.createNamespacedResourceQuota({
      namespace: quotaNamespace,
      body: { metadata: { name: 'no-pods' }, spec: { hard: { pods: '0' } } },
    });
    // No quota controller runs here: fill in the status it would write.
    await core.replaceNamespacedResourceQuotaStatus({
      namespace: quotaNamespace,
      name: 'no-pods',
      body: {
        metadata: { name: 'no-pods' },
        spec: { hard: { pods: '0' } },
        status: { hard: { pods: '0' }, used: { pods: '0' } },
      },
    });
    let denial: unknown;
    try {
      await core.createNamespacedPod({
        namespace: quotaNamespace,
        body: { metadata: { name: 'over' }, spec: { containers: [CONTAINER] } },
      });
    } catch (err) {
      denial = err;
    }
    expect(apiErrorCode(denial)).toBe(403);
    expect(apiErrorMessage(denial)).toContain('exceeded quota');
    const pendingHere = async (): Promise<LeaseJson[]> =>
      (await leases()).filter(l => l.namespace === quotaNamespace);
    expect((await pendingHere()).map(l => l.state)).toEqual(['pending']);
    await eventually('the rejected pod’s lease expired', async () =>
      (await pendingHere()).length === 0 ? true : undefined,
    );
  });

  it('changes nothing for a duplicate CREATE of a running pod', async () => {
    const pod = await createPod('dup');
    const lease = await bound(pod);
    let conflict: unknown;
    try {
      await core.createNamespacedPod({
        namespace,
        body: { metadata: { name: 'dup' }, spec: { containers: [CONTAINER] } },
      });
    } catch (err) {
      conflict = err;
    }
    expect(apiErrorCode(conflict)).toBe(409);
    // The duplicate's own pending lease (if it got one) expires; the running pod keeps its own.
    await eventually('only the running pod’s lease left for dup', async () => {
      const mine = (await leases()).filter(l => l.name === 'dup');
      return mine.length === 1 ? mine : undefined;
    });
    const after = await core.readNamespacedPod({ namespace, name: 'dup' });
    expect(annotation(after, OWNED.ip)).toBe(lease.ip);
    expect((await leases()).find(l => l.id === lease.id)?.state).toBe('bound');
    await deletePod('dup');
    await gone(lease.ip);
  });

  it('releases pods deleted while podlease was down once it is back', async () => {
    const pods = [await createPod('down-a'), await createPod('down-b')];
    const held = await Promise.all(pods.map(bound));
    await podlease.kill();
    // The kubelet stand-in finishes the deletions; no webhook is involved in a delete.
    await deletePod('down-a');
    await deletePod('down-b');
    expect((await leases()).filter(l => held.some(h => h.id === l.id))).toHaveLength(2);
    await podlease.restart();
    for (const h of held) await gone(h.ip);
  });

  it('hands the work to a second replica when the leader is killed', async () => {
    const pod = await createPod('failover');
    const lease = await bound(pod);
    const replica = await podlease.replica();
    cleanUp.unshift(() => replica.stop());
    // The first process leads; killing it leaves the Lease to expire (3 s here).
    await podlease.kill();
    await deletePod('failover');
    await gone(lease.ip);
    // The log is written asynchronously: wait for the line rather than read it once.
    await eventually('the replica to log its leadership', () =>
      Promise.resolve(replica.logTail(400).includes('became the leader') ? true : undefined),
    );
    await replica.kill();
    await podlease.restart();
  });

  it('rebuilds the pool from the pods after Redis loses everything, then leases only free addresses', async () => {
    await apps.createNamespacedStatefulSet({ namespace, body: statefulSet('after', 2, {}) });
    await stsIps('after', 2);
    const running = (await core.listNamespacedPod({ namespace })).items.filter(
      p => isReady(p) && p.metadata?.deletionTimestamp === undefined && leaseId(p) !== '',
    );
    expect(running.length).toBeGreaterThanOrEqual(4);
    await Promise.all(running.map(bound));
    expect(await redisCommand(redis.port, 'FLUSHALL')).toBe('+OK');
    // Rebuilt: every running pod's lease is back, bound to its pod, on its address.
    await eventually('every running pod’s lease restored', async () => {
      const now = await leases().catch(() => []);
      const ok = running.every(p =>
        now.some(
          l => l.id === leaseId(p) && l.ip === annotation(p, OWNED.ip) && l.state === 'bound',
        ),
      );
      return ok ? true : undefined;
    });
    expect(podlease.logTail(400)).toMatch(/rebuilt and ready/);
    const taken = new Set(running.map(p => annotation(p, OWNED.ip)));
    const fresh = [];
    for (let i = 0; i < 4; i++) fresh.push(await createPod(`fresh-${i}`));
    for (const p of fresh) {
      const ip = annotation(p, OWNED.ip) ?? '';
      expect(taken.has(ip), `${p.metadata?.name ?? ''} got ${ip}, which a running pod holds`).toBe(
        false,
      );
      taken.add(ip);
    }
    // Sticky reservations came back too: a recreated pod keeps its address.
    const before = await stsIps('after', 2);
    await core.deleteNamespacedPod({ namespace, name: 'after-1' });
    await eventually('after-1 recreated', async () => {
      const p = await core.readNamespacedPod({ namespace, name: 'after-1' }).catch(() => undefined);
      return p !== undefined && isReady(p) && p.metadata?.deletionTimestamp === undefined
        ? p
        : undefined;
    });
    expect(await stsIps('after', 2)).toEqual(before);
  });

  it('podlease check finds nothing wrong, and finds a leaked lease it then fixes', async () => {
    const clean = await podlease.cliKube(['check']);
    expect(clean.code, clean.stderr).toBe(0);
    // A pod deleted while no controller runs leaves its lease: check reports it, --fix frees it.
    const pod = await createPod('leaky');
    const lease = await bound(pod);
    await podlease.kill();
    await deletePod('leaky');
    const found = await podlease.cliKube(['check']);
    expect(found.code).toBe(1);
    expect(JSON.stringify(found.json)).toContain('"kind":"leaked"');
    const fixed = await podlease.cliKube(['check', '--fix']);
    expect(fixed.code, fixed.stderr).toBe(0);
    expect((await leases()).some(l => l.id === lease.id)).toBe(false);
    await podlease.restart();
  });
});
