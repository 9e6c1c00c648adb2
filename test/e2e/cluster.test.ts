// Smoke test of the e2e harness: a real control plane (etcd, kube-apiserver,
// kube-controller-manager) plus the kubelet stand-in running the CNI bridge plugin with host-local
// IPAM. A Deployment's pods get created by the controllers, wired into network namespaces, reported
// Running, and cleaned up again when the Deployment is deleted.
/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- @kubernetes/client-node's
   generated models are classes without behaviour; its API is meant to take object literals. */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { issueCertificate } from './cluster/certs.js';
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

  it('calls an admission webhook served on 127.0.0.1 with a certificate from the cluster CA', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'podlease-e2e-webhook-'));
    const ca = { certPath: inject('caCertPath'), keyPath: inject('caKeyPath') };
    const serving = await issueCertificate(dir, ca, {
      name: 'webhook',
      commonName: '127.0.0.1',
      ipAddresses: ['127.0.0.1'],
      usage: 'server',
    });
    const seen: string[] = [];
    const server = https.createServer(
      { cert: readFileSync(serving.certPath), key: readFileSync(serving.keyPath) },
      (req, res) => {
        let body = '';
        req.setEncoding('utf8');
        req.on('data', (c: string) => (body += c));
        req.on('end', () => {
          const review = JSON.parse(body) as { request: { uid: string; operation: string } };
          seen.push(review.request.operation);
          const patch = [{ op: 'add', path: '/metadata/labels/webhook', value: 'seen' }];
          res.setHeader('Content-Type', 'application/json');
          res.end(
            JSON.stringify({
              apiVersion: 'admission.k8s.io/v1',
              kind: 'AdmissionReview',
              response: {
                uid: review.request.uid,
                allowed: true,
                patchType: 'JSONPatch',
                patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
              },
            }),
          );
        });
      },
    );
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const admission = new k8s.KubeConfig();
    admission.loadFromFile(inject('kubeconfigPath'));
    const webhooks = admission.makeApiClient(k8s.AdmissionregistrationV1Api);
    const name = `${namespace}-smoke`;
    try {
      await webhooks.createMutatingWebhookConfiguration({
        body: {
          metadata: { name },
          webhooks: [
            {
              name: 'smoke.podlease.io',
              clientConfig: {
                url: `https://127.0.0.1:${port}/mutate`,
                caBundle: readFileSync(ca.certPath).toString('base64'),
              },
              rules: [
                {
                  operations: ['CREATE'],
                  apiGroups: [''],
                  apiVersions: ['v1'],
                  resources: ['pods'],
                },
              ],
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
              admissionReviewVersions: ['v1'],
              sideEffects: 'None',
              failurePolicy: 'Fail',
              timeoutSeconds: 5,
            },
          ],
        },
      });
      // The API server picks up webhook configurations asynchronously.
      const pod = await waitUntil('a pod admitted through the webhook', async () => {
        const created = await core.createNamespacedPod({
          namespace,
          body: {
            metadata: { generateName: 'hooked-', labels: { app: 'hooked' } },
            spec: { containers: [{ name: 'app', image: 'registry.invalid/never-pulled:1' }] },
          },
        });
        if (created.metadata?.labels?.webhook === 'seen') return created;
        await core.deleteNamespacedPod({ namespace, name: created.metadata?.name ?? '' });
        return undefined;
      });
      expect(seen).toContain('CREATE');
      await core.deleteNamespacedPod({ namespace, name: pod.metadata?.name ?? '' });
      await waitUntil('hooked pods gone', async () => {
        const list = await core.listNamespacedPod({ namespace, labelSelector: 'app=hooked' });
        return list.items.length === 0 ? true : undefined;
      });
    } finally {
      await webhooks.deleteMutatingWebhookConfiguration({ name }).catch(() => undefined);
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stop() removes the test bridge', async () => {
    await kubelet.stop();
    const links = await ipJson<{ ifname: string }[]>(['link', 'show']);
    expect(links.map(l => l.ifname)).not.toContain(kubelet.bridge);
  });
});
