// Smoke test of the e2e harness: a real control plane (etcd, kube-apiserver,
// kube-controller-manager) plus the kubelet stand-in running the CNI bridge plugin with host-local
// IPAM. A Deployment's pods get created by the controllers, wired into network namespaces, reported
// Running, and cleaned up again when the Deployment is deleted.
/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- @kubernetes/client-node's
   generated models are classes without behaviour; its API is meant to take object literals. */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { DEFAULT_TEST_SUBNET, type Kubelet, startKubelet } from './cluster/kubelet.js';
import { waitUntil } from './cluster/wait.js';

const execFileAsync = promisify(execFile);
const skip = inject('e2eSkip');
if (skip) console.warn(`\n!! SKIPPING e2e cluster smoke test: ${skip}\n`);

interface IpAddr {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

async function ipJson<T>(args: string[]): Promise<T> {
  const { stdout } = await execFileAsync('ip', ['-j', ...args]);
  return JSON.parse(stdout) as T;
}

async function netnsNames(): Promise<string[]> {
  const out = (await execFileAsync('ip', ['-j', 'netns', 'list'])).stdout.trim();
  return out ? (JSON.parse(out) as { name: string }[]).map(n => n.name) : [];
}

function inSubnet(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const toInt = (a: string): number => a.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const mask = 2 ** 32 - 2 ** (32 - Number(bits));
  return (toInt(ip) & mask) >>> 0 === (toInt(base ?? '') & mask) >>> 0;
}

function isReady(pod: k8s.V1Pod): boolean {
  return (
    pod.status?.phase === 'Running' &&
    (pod.status.conditions ?? []).some(c => c.type === 'Ready' && c.status === 'True')
  );
}

describe.skipIf(skip !== '')('e2e cluster harness', () => {
  const namespace = `smoke-${randomBytes(3).toString('hex')}`;
  const labels = { app: 'smoke' };
  let core: k8s.CoreV1Api;
  let apps: k8s.AppsV1Api;
  let kubelet: Kubelet;
  let netnsOfPods: string[] = [];

  beforeAll(async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(inject('kubeconfigPath'));
    core = kc.makeApiClient(k8s.CoreV1Api);
    apps = kc.makeApiClient(k8s.AppsV1Api);
    kubelet = await startKubelet({ kubeconfigPath: inject('kubeconfigPath'), namespace });
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    // The ServiceAccount admission plugin rejects pods until the controller-manager made this.
    await waitUntil('serviceaccount default', () =>
      core.readNamespacedServiceAccount({ namespace, name: 'default' }),
    );
  });

  afterAll(async () => {
    await kubelet.stop();
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  });

  it('serves the API on loopback with the admin kubeconfig', async () => {
    expect(inject('server')).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const nodes = await core.listNode();
    expect(nodes.items.map(n => n.metadata?.name)).toContain(kubelet.nodeName);
  });

  it('runs a Deployment: controllers create 3 pods, each wired into its own netns', async () => {
    await apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: 'smoke', labels },
        spec: {
          replicas: 3,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: { containers: [{ name: 'app', image: 'registry.invalid/never-pulled:1' }] },
          },
        },
      },
    });

    // The deployment controller made a ReplicaSet, the replicaset controller the pods.
    const rs = await waitUntil('a ReplicaSet owned by the Deployment', async () => {
      const list = await apps.listNamespacedReplicaSet({ namespace });
      return list.items.find(r => r.metadata?.ownerReferences?.some(o => o.name === 'smoke'));
    });
    const pods = await waitUntil(
      '3 Running and Ready pods',
      async () => {
        const list = await core.listNamespacedPod({ namespace, labelSelector: 'app=smoke' });
        const ready = list.items.filter(isReady);
        return ready.length === 3 && list.items.length === 3 ? ready : undefined;
      },
      120_000,
    );
    for (const pod of pods) {
      expect(pod.spec?.nodeName).toBe(kubelet.nodeName);
      expect(pod.metadata?.ownerReferences?.[0]?.uid).toBe(rs.metadata?.uid);
    }

    const ips = pods.map(p => p.status?.podIP ?? '');
    expect(new Set(ips).size).toBe(3);
    for (const ip of ips) expect(inSubnet(ip, DEFAULT_TEST_SUBNET)).toBe(true);

    // Each podIP is really configured on eth0 inside the pod's network namespace, and that
    // namespace has no default route (nothing leaves the machine).
    const running = kubelet.pods();
    netnsOfPods = [];
    for (const pod of pods) {
      const entry = running.get(`${namespace}/${pod.metadata?.name ?? ''}`);
      expect(entry?.netns).toBeDefined();
      const netns = entry?.netns ?? '';
      netnsOfPods.push(netns);
      const addrs = await ipJson<IpAddr[]>(['-n', netns, 'addr', 'show', 'eth0']);
      const v4 = addrs[0]?.addr_info.filter(a => a.family === 'inet').map(a => a.local);
      expect(v4).toEqual([pod.status?.podIP]);
      const routes = await ipJson<{ dst: string }[]>(['-n', netns, 'route', 'show']);
      expect(routes.map(r => r.dst)).not.toContain('default');
    }
    expect(await netnsNames()).toEqual(expect.arrayContaining(netnsOfPods));

    // The ReplicaSet controller counts them as available.
    await waitUntil('deployment availableReplicas 3', async () => {
      const d = await apps.readNamespacedDeployment({ namespace, name: 'smoke' });
      return d.status?.availableReplicas === 3 ? d : undefined;
    });
  });

  it('cleans up pods and namespaces when the Deployment is deleted', async () => {
    await apps.deleteNamespacedDeployment({
      namespace,
      name: 'smoke',
      body: { propagationPolicy: 'Background' },
    });
    // garbage collector → ReplicaSet → pods (graceful) → stand-in: CNI DEL, netns, final delete
    await waitUntil(
      'pods gone',
      async () => {
        const list = await core.listNamespacedPod({ namespace });
        return list.items.length === 0 ? true : undefined;
      },
      120_000,
    );
    await kubelet.idle();
    const left = await netnsNames();
    for (const netns of netnsOfPods) expect(left).not.toContain(netns);
    expect(kubelet.pods().size).toBe(0);
    expect(kubelet.failures()).toEqual([]);
  });

  it('stop() removes the test bridge', async () => {
    await kubelet.stop();
    const links = await ipJson<{ ifname: string }[]>(['link', 'show']);
    expect(links.map(l => l.ifname)).not.toContain(kubelet.bridge);
  });
});
