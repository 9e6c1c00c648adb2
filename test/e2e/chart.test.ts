// charts/podlease against the run's real kube-apiserver: every manifest the chart renders, under
// each TLS mode and each Redis mode, passes a server-side dry-run; `helm install` succeeds and
// creates every object; and the CNI DaemonSet's installer, run as that DaemonSet's container would
// (its env, its mounts, a token of its ServiceAccount), writes the conflist and kubeconfig that the
// kubelet stand-in then wires pods with: once with the pod annotations the conflist's capability
// asks for (no API call), once through the API with the installer's kubeconfig and token.
//
// There is no kubelet for arbitrary images here, so the chart's own pods never run: admission goes
// through the harness's local `podlease serve` (test/e2e/podlease.ts), started on the pools file
// the chart rendered into its ConfigMap.
/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- @kubernetes/client-node's
   generated models are classes without behaviour; its API is meant to take object literals. */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

import {
  CHART_DIR,
  helm,
  helmMissing,
  kubectl,
  type Manifest,
  MODES,
  parseManifests,
  template,
} from '../helpers/chart.js';
import { type Kubelet, startKubelet, SYSTEM_CNI_DIR } from './cluster/kubelet.js';
import { waitUntil } from './cluster/wait.js';
import { type PoolSpec, type Podlease, startPodlease } from './podlease.js';
import { annotation, eth0Inet, inSubnet, isReady, OWNED } from './pods.js';

const execFileAsync = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const e2eSkip = inject('e2eSkip');
const helmSkip = helmMissing();
const requireAll = process.env.PODLEASE_REQUIRE_ALL === '1';
// e2eSkip already fails the run under PODLEASE_REQUIRE_ALL=1 (global setup); a missing helm fails here
const skip = e2eSkip || (requireAll ? '' : helmSkip);
if (skip) console.warn(`\n!! SKIPPING chart e2e: ${skip}\n`);

const run = randomBytes(3).toString('hex');
const RELEASE = `plc-${run}`;
const RELEASE_NS = `plc-${run}`;
const DRY_NS = `plc-dry-${run}`;
const POOL_CIDR = '10.247.0.0/24';
const BRIDGE = `plc${run}`;
const CONTAINER = { name: 'app', image: 'registry.invalid/never-pulled:1' };
const POD_WAIT_MS = 120_000;

/** Stand-ins for the CRDs the optional objects use (cert-manager, Prometheus Operator): they
 * check apiVersion, kind and metadata, not the spec. */
const STUB_CRDS = [
  ['cert-manager.io', 'Issuer', 'issuers', 'Namespaced'],
  ['cert-manager.io', 'ClusterIssuer', 'clusterissuers', 'Cluster'],
  ['cert-manager.io', 'Certificate', 'certificates', 'Namespaced'],
  ['monitoring.coreos.com', 'ServiceMonitor', 'servicemonitors', 'Namespaced'],
].map(([group, kind, plural, scope]) => ({
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `${plural}.${group}`, labels: { 'podlease.io/e2e-stub': 'true' } },
  spec: {
    group,
    scope,
    names: { kind, plural, singular: kind?.toLowerCase(), listKind: `${kind}List` },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        },
      },
    ],
  },
}));

describe.skipIf(skip !== '')('charts/podlease on the e2e API server', () => {
  const kubeconfigPath = inject('kubeconfigPath');
  let core: k8s.CoreV1Api;
  let apps: k8s.AppsV1Api;
  let work: string;
  let hostBin: string;
  let hostConf: string;
  let podlease: Podlease | undefined;
  const cleanUp: (() => Promise<unknown>)[] = [];

  const ok = (what: string, r: { code: number; stdout: string; stderr: string }): string => {
    if (r.code !== 0) throw new Error(`${what} failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
    return r.stdout;
  };

  const values = (): Record<string, unknown> => ({
    pools: [{ name: `chart-${run}`, cidr: POOL_CIDR, gateway: '10.247.0.1', default: true }],
    // Only namespaces labelled for this run are sent to the chart's webhook: there is no replica
    // behind its Service here, and other test files share the API server.
    webhook: { namespaceLabels: { 'podlease.io/e2e-chart': run } },
    cni: {
      binDir: hostBin,
      confDir: hostConf,
      apiServer: inject('server'),
      conflist: {
        enabled: true,
        network: {
          cniVersion: '1.0.0',
          name: `chart-${run}`,
          plugins: [
            {
              type: 'bridge',
              bridge: BRIDGE,
              isGateway: true,
              isDefaultGateway: false,
              ipMasq: false,
              hairpinMode: false,
              ipam: { type: 'podlease' },
            },
          ],
        },
      },
    },
  });

  beforeAll(async () => {
    if (helmSkip !== '') {
      throw new Error(`PODLEASE_REQUIRE_ALL=1 but ${helmSkip}`);
    }
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
    apps = kc.makeApiClient(k8s.AppsV1Api);
    work = mkdtempSync(join(tmpdir(), 'podlease-e2e-chart-'));
    hostBin = join(work, 'host/opt/cni/bin');
    hostConf = join(work, 'host/etc/cni/net.d');
    cleanUp.push(() => {
      rmSync(work, { recursive: true, force: true });
      return Promise.resolve();
    });
    const crds = join(work, 'crds.json');
    writeFileSync(crds, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: STUB_CRDS }));
    ok('kubectl apply CRDs', await kubectl(['apply', '-f', crds], kubeconfigPath));
    cleanUp.push(() => kubectl(['delete', '-f', crds, '--wait=false'], kubeconfigPath));
    ok(
      'kubectl wait CRDs',
      await kubectl(
        ['wait', '--for=condition=Established', '-f', crds, '--timeout=60s'],
        kubeconfigPath,
      ),
    );
    for (const name of [DRY_NS, RELEASE_NS]) {
      await core.createNamespace({ body: { metadata: { name } } });
      cleanUp.push(() => core.deleteNamespace({ name }).catch(() => undefined));
    }
  });

  afterAll(async () => {
    for (const step of [...cleanUp].reverse()) {
      await step().catch((err: unknown) => {
        console.warn(`chart e2e clean-up: ${String(err)}`);
      });
    }
  });

  it.each(MODES)('passes a server-side dry-run under $name', async ({ values: mode }) => {
    const r = await template(mode, { release: `dry-${run}`, namespace: DRY_NS });
    const file = join(work, `dry-${randomBytes(3).toString('hex')}.yaml`);
    writeFileSync(file, ok('helm template', r));
    const names = parseManifests(r.stdout).map(o => `${o.kind}/${o.metadata.name}`);
    const out = ok(
      'kubectl apply --dry-run=server',
      await kubectl(['apply', '--dry-run=server', '-f', file, '-o', 'name'], kubeconfigPath),
    );
    // one line per object, each accepted by the API server's validation and admission
    expect(out.trim().split('\n')).toHaveLength(names.length);
  });

  describe('installed with helm', () => {
    let manifests: Manifest[];

    beforeAll(async () => {
      mkdirSync(hostBin, { recursive: true });
      mkdirSync(hostConf, { recursive: true });
      const file = join(work, 'values.json');
      writeFileSync(file, JSON.stringify(values()));
      ok(
        'helm install',
        await helm(
          ['install', RELEASE, CHART_DIR, '-n', RELEASE_NS, '-f', file, '--timeout', '2m'],
          kubeconfigPath,
        ),
      );
      cleanUp.push(async () => {
        await helm(
          ['uninstall', RELEASE, '-n', RELEASE_NS, '--wait', '--timeout', '2m'],
          kubeconfigPath,
        );
        // No controller here removes the PVC protection finalizer of the Redis volume claim.
        const pvcs = await core.listNamespacedPersistentVolumeClaim({ namespace: RELEASE_NS });
        for (const pvc of pvcs.items) {
          await core.patchNamespacedPersistentVolumeClaim(
            {
              name: pvc.metadata?.name ?? '',
              namespace: RELEASE_NS,
              body: { metadata: { finalizers: null } },
            },
            k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
          );
        }
      });
      manifests = parseManifests(
        ok(
          'helm get manifest',
          await helm(['get', 'manifest', RELEASE, '-n', RELEASE_NS], kubeconfigPath),
        ),
      );
    });

    it('succeeds and creates every object of the release', async () => {
      const status = JSON.parse(
        ok(
          'helm status',
          await helm(['status', RELEASE, '-n', RELEASE_NS, '-o', 'json'], kubeconfigPath),
        ),
      ) as { info: { status: string } };
      expect(status.info.status).toBe('deployed');
      const file = join(work, 'release.yaml');
      writeFileSync(
        file,
        ok(
          'helm get manifest',
          await helm(['get', 'manifest', RELEASE, '-n', RELEASE_NS], kubeconfigPath),
        ),
      );
      const found = ok(
        'kubectl get',
        await kubectl(['get', '-f', file, '-o', 'name'], kubeconfigPath),
      )
        .trim()
        .split('\n');
      expect(found).toHaveLength(manifests.length);
      expect(manifests.map(m => m.kind)).toEqual(
        expect.arrayContaining([
          'Deployment',
          'DaemonSet',
          'StatefulSet',
          'MutatingWebhookConfiguration',
          'ValidatingWebhookConfiguration',
          'NetworkPolicy',
          'PodDisruptionBudget',
        ]),
      );
      // the controllers took over: a ReplicaSet for the Deployment, a pod for the Redis
      await waitUntil('the Deployment to have a ReplicaSet', async () => {
        const sets = await apps.listNamespacedReplicaSet({ namespace: RELEASE_NS });
        return sets.items.length > 0 ? true : undefined;
      });
    });

    describe('the CNI installer, as the DaemonSet runs it', () => {
      let kubelet: Kubelet | undefined;
      let installerEnv: NodeJS.ProcessEnv;
      let installerArgs: string[];
      const conflistPath = (): string => join(hostConf, '10-podlease.conflist');
      const installedToken = (): string => join(hostConf, 'podlease/token');

      /** Runs the DaemonSet's container command once, with its env and mounts mapped here. */
      const runInstaller = async (): Promise<void> => {
        await execFileAsync(process.execPath, installerArgs, {
          env: installerEnv,
          timeout: 60_000,
        });
      };

      beforeAll(async () => {
        const name = `${RELEASE}-podlease-cni`;
        const ds = await apps.readNamespacedDaemonSet({ name, namespace: RELEASE_NS });
        const pod = ds.spec?.template.spec;
        const c = pod?.containers[0];
        if (pod === undefined || c === undefined) throw new Error(`${name} has no container`);
        // what the kubelet would mount: host paths as they are, the projected token and the
        // ConfigMaps as files here
        const mounts = new Map<string, string>();
        for (const m of c.volumeMounts ?? []) {
          const v = (pod.volumes ?? []).find(x => x.name === m.name);
          if (v?.hostPath) {
            mounts.set(m.mountPath, v.hostPath.path);
            continue;
          }
          const dir = join(work, 'mounts', m.name);
          mkdirSync(dir, { recursive: true });
          mounts.set(m.mountPath, dir);
          if (v?.projected) {
            const spec = v.projected.sources?.find(s => s.serviceAccountToken)?.serviceAccountToken;
            const token = await core.createNamespacedServiceAccountToken({
              name: pod.serviceAccountName ?? '',
              namespace: RELEASE_NS,
              body: { spec: { audiences: [], expirationSeconds: spec?.expirationSeconds ?? 3600 } },
            });
            writeFileSync(join(dir, spec?.path ?? 'token'), token.status?.token ?? '');
            const ca = await waitUntil('configmap kube-root-ca.crt', () =>
              core.readNamespacedConfigMap({ name: 'kube-root-ca.crt', namespace: RELEASE_NS }),
            );
            writeFileSync(join(dir, 'ca.crt'), ca.data?.['ca.crt'] ?? '');
          } else if (v?.configMap) {
            const cm = await core.readNamespacedConfigMap({
              name: v.configMap.name ?? '',
              namespace: RELEASE_NS,
            });
            for (const [key, text] of Object.entries(cm.data ?? {}))
              writeFileSync(join(dir, key), text);
          }
        }
        const mapPath = (p: string): string => {
          for (const [inside, outside] of mounts) {
            if (p === inside || p.startsWith(`${inside}/`)) return outside + p.slice(inside.length);
          }
          return p;
        };
        installerEnv = {
          PATH: process.env.PATH,
          ...Object.fromEntries((c.env ?? []).map(e => [e.name, mapPath(e.value ?? '')])),
        };
        const [node, entry] = c.command ?? [];
        expect(node).toBe('node');
        installerArgs = [String(entry).replace(/^\/app\//, ROOT), '--once'];
        await runInstaller();
      });

      afterAll(async () => {
        await podlease?.stop();
        await kubelet?.stop();
      });

      it('writes the plugin, a JSON kubeconfig with a tokenFile, and the conflist with the capability', () => {
        expect(readFileSync(join(hostBin, 'podlease')).length).toBe(
          readFileSync(join(ROOT, 'dist/cni/podlease')).length,
        );
        const kc = JSON.parse(readFileSync(join(hostConf, 'podlease/kubeconfig'), 'utf8')) as {
          clusters: { cluster: { server: string } }[];
          users: { user: { tokenFile: string } }[];
        };
        expect(kc.clusters[0]?.cluster.server).toBe(inject('server'));
        expect(kc.users[0]?.user.tokenFile).toBe(installedToken());
        const conflist = JSON.parse(readFileSync(conflistPath(), 'utf8')) as {
          plugins: { capabilities: Record<string, boolean>; ipam: Record<string, string> }[];
        };
        expect(conflist.plugins[0]?.capabilities).toEqual({
          'io.kubernetes.cri.pod-annotations': true,
        });
        expect(conflist.plugins[0]?.ipam.kubeconfig).toBe(join(hostConf, 'podlease/kubeconfig'));
      });

      /** Starts podlease serve on the chart's pools file, once. */
      const servePodlease = async (): Promise<Podlease> => {
        if (podlease !== undefined) return podlease;
        const cm = await core.readNamespacedConfigMap({
          name: `${RELEASE}-podlease-pools`,
          namespace: RELEASE_NS,
        });
        const file = parseYaml(cm.data?.['pools.yaml'] ?? '') as { pools: PoolSpec[] };
        podlease = await startPodlease({
          name: `plc-${run}`,
          kubeconfigPath,
          caCertPath: inject('caCertPath'),
          caKeyPath: inject('caKeyPath'),
          redisUrl: inject('e2eRedisUrl'),
          pools: file.pools,
        });
        await podlease.register();
        return podlease;
      };

      /** A kubelet for `namespace` wiring pods with the installed conflist and plugin. */
      const kubeletFor = async (
        namespace: string,
        passPodAnnotations: boolean,
      ): Promise<Kubelet> => {
        await kubelet?.stop();
        kubelet = await startKubelet({
          kubeconfigPath,
          namespace,
          nodeName: `podlease-e2e-chart-${run}`,
          bridge: BRIDGE,
          conflistPath: conflistPath(),
          cniPath: [hostBin, SYSTEM_CNI_DIR],
          passPodAnnotations,
        });
        return kubelet;
      };

      const createPod = async (namespace: string, name: string): Promise<void> => {
        await core.createNamespacedPod({
          namespace,
          body: { metadata: { name }, spec: { containers: [CONTAINER] } },
        });
      };

      const readyPod = async (namespace: string, name: string): Promise<k8s.V1Pod> =>
        waitUntil(
          `pod ${namespace}/${name} Ready (kubelet failures: ${JSON.stringify(kubelet?.failures())})`,
          async () => {
            const pod = await core.readNamespacedPod({ namespace, name });
            return isReady(pod) ? pod : undefined;
          },
          POD_WAIT_MS,
        );

      const deletePodAndWait = async (namespace: string, name: string): Promise<void> => {
        await core.deleteNamespacedPod({ namespace, name });
        await waitUntil(
          `pod ${namespace}/${name} gone`,
          async () => {
            const pods = await core.listNamespacedPod({ namespace });
            return pods.items.some(p => p.metadata?.name === name) ? undefined : true;
          },
          POD_WAIT_MS,
        );
      };

      const expectWired = async (pod: k8s.V1Pod): Promise<void> => {
        const ip = annotation(pod, OWNED.ip) ?? '';
        expect(inSubnet(ip, POOL_CIDR), `${ip} in ${POOL_CIDR}`).toBe(true);
        expect(pod.status?.podIP).toBe(ip);
        const running = kubelet
          ?.pods()
          .get(`${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`);
        expect(await eth0Inet(running?.netns ?? '')).toEqual([`${ip}/24`]);
      };

      it('wires a pod with the pod annotations the capability asks for: no API call', async () => {
        const served = await servePodlease();
        const namespace = `plc-rc-${run}`;
        await served.createNamespace(namespace);
        await kubeletFor(namespace, true);
        await createPod(namespace, 'rc');
        await expectWired(await readyPod(namespace, 'rc'));
        await deletePodAndWait(namespace, 'rc');
      });

      it("wires a pod through the API server with the installer's kubeconfig and token", async () => {
        const served = await servePodlease();
        const namespace = `plc-api-${run}`;
        await served.createNamespace(namespace);
        const k = await kubeletFor(namespace, false);
        await createPod(namespace, 'api');
        await expectWired(await readyPod(namespace, 'api'));
        // the token is what ADD authenticates with: a spoilt one is refused (CNI code 105)...
        writeFileSync(installedToken(), 'not-a-token\n');
        await createPod(namespace, 'spoilt');
        await waitUntil(
          'ADD of the spoilt pod to fail',
          () =>
            Promise.resolve(
              k.failures().some(f => f.pod === `${namespace}/spoilt`) ? true : undefined,
            ),
          POD_WAIT_MS,
        );
        expect(k.failures().find(f => f.pod === `${namespace}/spoilt`)?.message).toContain(
          'CNI error 105',
        );
        // ...until the installer's next pass puts the real one back
        await runInstaller();
        await createPod(namespace, 'again');
        await expectWired(await readyPod(namespace, 'again'));
        for (const name of ['api', 'spoilt', 'again']) await deletePodAndWait(namespace, name);
      });
    });
  });
});
