// bench:race — the 200-pod race of issue 14: pods created through the e2e kube-apiserver, then a
// CNI ADD in a network namespace per pod (the Debian `bridge` plugin with an IPAM plugin), then
// DEL, each phase at concurrency 8, as a node's runtime would for a burst of new pods. Three
// modes, interleaved in rotating rounds on one cluster:
//
//   host-local    pods created with no webhook; bridge + Debian host-local (state in a temp dir)
//   podlease      podlease serve (Redis) leases each pod at admission; bridge + the podlease IPAM
//                 plugin with the pod's annotations in runtimeConfig, as containerd passes them
//                 when the conflist declares `io.kubernetes.cri.pod-annotations` (the installer's
//                 conflist does)
//   podlease-api  the same, with no annotations passed: the plugin reads the pod from the API
//                 server (a service-account token kubeconfig, as the installer writes one)
//
// Every ADD is checked: each pod's eth0 has its own address, in the mode's subnet, and under
// podlease the address of the pod's podlease.io/ip annotation.
//
// Network safety: two test bridges with no uplink, `isGateway: false` (no address on the bridge,
// no ip_forward), no masquerading, IPAM without routes; every namespace is deleted after DEL.
// Every loop is bounded by its pod count.
//
//   npm run bench:race
//   BENCH_PODS=200 BENCH_CONCURRENCY=8 BENCH_ROUNDS=3 BENCH_WARMUP=20 (defaults)
//   BENCH_RECORD=1   appends the section to bench/RESULTS.md
/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- @kubernetes/client-node's
   generated models are classes without behaviour; its API is meant to take object literals. */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { controlPlaneVersions } from '../../test/e2e/cluster/binaries.js';
import {
  type CniResult,
  PODLEASE_CNI_DIR,
  runCni,
  SYSTEM_CNI_DIR,
} from '../../test/e2e/cluster/kubelet.js';
import { waitUntil } from '../../test/e2e/cluster/wait.js';
import { type Podlease, startPodlease } from '../../test/e2e/podlease.js';
import { eth0Inet, inSubnet, OWNED } from '../../test/e2e/pods.js';
import {
  type BurstClient,
  burstClient,
  type CreatedPod,
  envInt,
  report,
  rotatingRounds,
} from '../lib/kube-burst.js';

const execFileAsync = promisify(execFile);
const skip = inject('e2eSkip');
if (skip) console.warn(`\n!! SKIPPING bench:race: ${skip}\n`);

const PODS = envInt('BENCH_PODS', 200);
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 8);
const ROUNDS = envInt('BENCH_ROUNDS', 3);
const WARMUP = envInt('BENCH_WARMUP', 20);
const RECORD = process.env.BENCH_RECORD === '1';
const POOL = { name: 'race', cidr: '10.252.0.0/16', gateway: '10.252.0.1', default: true };
const HOST_LOCAL_SUBNET = '10.253.0.0/16';
const BRIDGE = { 'host-local': 'plrace0', podlease: 'plrace1', 'podlease-api': 'plrace1' } as const;
const CNI_PATH = [PODLEASE_CNI_DIR, SYSTEM_CNI_DIR];
const BRIDGE_PLUGIN = path.join(SYSTEM_CNI_DIR, 'bridge');
const SA = { namespace: 'default', name: 'podlease-race-cni' };

const MODES = ['host-local', 'podlease', 'podlease-api'] as const;
type Mode = (typeof MODES)[number];

interface Batch {
  readonly mode: Mode;
  readonly round: number;
  readonly createS: number;
  readonly addS: number;
  readonly delS: number;
  readonly addP50Ms: number;
  readonly addP99Ms: number;
}

const quantileOf = (values: readonly number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
};
const total = (b: Batch): number => b.createS + b.addS + b.delS;

/** Runs `fn` over `items` with `concurrency` in flight. */
async function eachLimited<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

const ip = async (args: string[]): Promise<void> => {
  await execFileAsync('ip', args);
};

describe.skipIf(skip !== '')('bench:race', () => {
  const cleanUp: (() => Promise<void>)[] = [];
  let core: k8s.CoreV1Api;
  let client: BurstClient;
  let podlease: Podlease;
  let workDir: string;
  let tokenKubeconfig: string;
  const liveNetns = new Set<string>();

  const netconf = (mode: Mode, pod: CreatedPod, dataDir: string): Record<string, unknown> => ({
    cniVersion: '1.0.0',
    name: 'podlease-race',
    type: 'bridge',
    bridge: BRIDGE[mode],
    isGateway: false,
    isDefaultGateway: false,
    ipMasq: false,
    hairpinMode: false,
    ipam:
      mode === 'host-local'
        ? { type: 'host-local', ranges: [[{ subnet: HOST_LOCAL_SUBNET }]], dataDir }
        : { type: 'podlease', kubeconfig: tokenKubeconfig },
    ...(mode === 'podlease'
      ? { runtimeConfig: { 'io.kubernetes.cri.pod-annotations': pod.metadata.annotations ?? {} } }
      : {}),
  });

  const createNamespace = async (mode: Mode, name: string): Promise<void> => {
    if (mode !== 'host-local') {
      await podlease.createNamespace(name);
      return;
    }
    await core.createNamespace({ body: { metadata: { name } } });
    await waitUntil(`serviceaccount ${name}/default`, () =>
      core.readNamespacedServiceAccount({ namespace: name, name: 'default' }),
    );
  };

  const batch = async (mode: Mode, round: number, count: number): Promise<Batch> => {
    const namespace = `race-${mode}-${String(round)}`;
    await createNamespace(mode, namespace);
    const dataDir = mkdtempSync(path.join(workDir, 'host-local-'));
    const { seconds: createS, pods } = await client.createPods(namespace, count);

    const results: (CniResult | undefined)[] = [];
    const addMs: number[] = [];
    const netnsOf = (i: number): string => `plr-${String(round)}-${mode.slice(-3)}-${String(i)}`;
    const invocation = (pod: CreatedPod, i: number) => ({
      containerId: `plr${pod.metadata.uid.replace(/-/g, '')}`,
      netnsPath: `/run/netns/${netnsOf(i)}`,
      pod: pod as unknown as k8s.V1Pod,
    });
    const addStart = performance.now();
    await eachLimited(pods, CONCURRENCY, async (pod, i) => {
      const t0 = performance.now();
      const netns = netnsOf(i);
      await ip(['netns', 'add', netns]);
      liveNetns.add(netns);
      await ip(['-n', netns, 'link', 'set', 'lo', 'up']);
      const out = await runCni(
        BRIDGE_PLUGIN,
        { command: 'ADD', ...invocation(pod, i), netconf: netconf(mode, pod, dataDir) },
        CNI_PATH,
        {},
      );
      results[i] = JSON.parse(out) as CniResult;
      addMs.push(performance.now() - t0);
    });
    const addS = (performance.now() - addStart) / 1000;

    // What was measured: every pod's eth0 has its own address, the one its IPAM answered (not timed).
    const subnet = mode === 'host-local' ? HOST_LOCAL_SUBNET : POOL.cidr;
    const seen = new Set<string>();
    await eachLimited(pods, CONCURRENCY, async (pod, i) => {
      const onEth0 = (await eth0Inet(netnsOf(i))).map(a => a.split('/')[0]);
      const answered = results[i]?.ips?.[0]?.address.split('/')[0] ?? '';
      expect(onEth0).toEqual([answered]);
      expect(inSubnet(answered, subnet)).toBe(true);
      if (mode !== 'host-local') expect(answered).toBe(pod.metadata.annotations?.[OWNED.ip]);
      seen.add(answered);
    });
    expect(seen.size).toBe(count);

    const delStart = performance.now();
    await eachLimited(pods, CONCURRENCY, async (pod, i) => {
      const prevResult = results[i];
      await runCni(
        BRIDGE_PLUGIN,
        {
          command: 'DEL',
          ...invocation(pod, i),
          netconf: { ...netconf(mode, pod, dataDir), ...(prevResult ? { prevResult } : {}) },
        },
        CNI_PATH,
        {},
      );
      await ip(['netns', 'del', netnsOf(i)]);
      liveNetns.delete(netnsOf(i));
    });
    const delS = (performance.now() - delStart) / 1000;
    rmSync(dataDir, { recursive: true, force: true });
    return {
      mode,
      round,
      createS,
      addS,
      delS,
      addP50Ms: quantileOf(addMs, 0.5),
      addP99Ms: quantileOf(addMs, 0.99),
    };
  };

  /** A service account that may read pods, and a kubeconfig with its token in a file. */
  const makeTokenKubeconfig = async (kc: k8s.KubeConfig, server: URL): Promise<string> => {
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    const quiet = (err: unknown): undefined => {
      if (!(err instanceof k8s.ApiException) || (err as k8s.ApiException<unknown>).code !== 409)
        throw err;
      return undefined;
    };
    await core
      .createNamespacedServiceAccount({
        namespace: SA.namespace,
        body: { metadata: { name: SA.name } },
      })
      .catch(quiet);
    await rbac
      .createClusterRole({
        body: {
          metadata: { name: SA.name },
          rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }],
        },
      })
      .catch(quiet);
    await rbac
      .createClusterRoleBinding({
        body: {
          metadata: { name: SA.name },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: SA.name },
          subjects: [{ kind: 'ServiceAccount', namespace: SA.namespace, name: SA.name }],
        },
      })
      .catch(quiet);
    const token = await core.createNamespacedServiceAccountToken({
      namespace: SA.namespace,
      name: SA.name,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const tokenFile = path.join(workDir, 'token');
    writeFileSync(tokenFile, token.status?.token ?? '', { mode: 0o600 });
    const file = path.join(workDir, 'kubeconfig');
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'race',
            cluster: {
              server: server.origin,
              'certificate-authority-data': readFileSync(inject('caCertPath')).toString('base64'),
            },
          },
        ],
        users: [{ name: 'race', user: { tokenFile } }],
        contexts: [{ name: 'race', context: { cluster: 'race', user: 'race' } }],
        'current-context': 'race',
      }),
      { mode: 0o600 },
    );
    return file;
  };

  beforeAll(async () => {
    const kubeconfigPath = inject('kubeconfigPath');
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
    workDir = mkdtempSync(path.join(os.tmpdir(), 'podlease-race-'));
    cleanUp.push(async () => {
      for (const netns of liveNetns) await ip(['netns', 'del', netns]).catch(() => undefined);
      for (const bridge of new Set(Object.values(BRIDGE)))
        await ip(['link', 'del', bridge]).catch(() => undefined);
      rmSync(workDir, { recursive: true, force: true });
    });
    client = burstClient(kubeconfigPath, CONCURRENCY);
    cleanUp.push(() => {
      client.close();
      return Promise.resolve();
    });
    tokenKubeconfig = await makeTokenKubeconfig(kc, client.server);
    podlease = await startPodlease({
      name: 'race',
      kubeconfigPath,
      caCertPath: inject('caCertPath'),
      caKeyPath: inject('caKeyPath'),
      redisUrl: inject('e2eRedisUrl'),
      pools: [POOL],
    });
    cleanUp.push(() => podlease.stop());
    await podlease.register();
  });

  afterAll(async () => {
    for (const stop of cleanUp.reverse()) await stop();
  });

  it(`races ${String(PODS)} pods through create, CNI ADD and DEL beside host-local`, async () => {
    for (const mode of MODES) await batch(mode, 0, WARMUP);
    const batches = await rotatingRounds(
      MODES,
      ROUNDS,
      (mode, round) => batch(mode, round, PODS),
      b =>
        `${b.mode.padEnd(12)} create ${b.createS.toFixed(2)} s, ADD ${b.addS.toFixed(2)} s ` +
        `(p50 ${b.addP50Ms.toFixed(0)} ms), DEL ${b.delS.toFixed(2)} s, total ${total(b).toFixed(2)} s`,
    );
    report(markdown(batches), RECORD);
    for (const mode of MODES) expect(batches.filter(b => b.mode === mode)).toHaveLength(ROUNDS);
  });
});

function markdown(batches: readonly Batch[]): string {
  const of = (mode: Mode): Batch[] => batches.filter(b => b.mode === mode);
  const sum = (mode: Mode, pick: (b: Batch) => number): number =>
    of(mode).reduce((s, b) => s + pick(b), 0) / of(mode).length;
  const v = controlPlaneVersions();
  const rows = batches.map(
    b =>
      `| ${String(b.round)} | ${b.mode} | ${b.createS.toFixed(2)} | ${b.addS.toFixed(2)} | ` +
      `${b.addP50Ms.toFixed(0)} | ${b.addP99Ms.toFixed(0)} | ${b.delS.toFixed(2)} | ${total(b).toFixed(2)} |`,
  );
  const base = sum('host-local', total);
  const means = MODES.map(
    m =>
      `| ${m} | ${sum(m, b => b.createS).toFixed(2)} | ${sum(m, b => b.addS).toFixed(2)} | ` +
      `${sum(m, b => b.delS).toFixed(2)} | ${sum(m, total).toFixed(2)} | ${(sum(m, total) / base).toFixed(2)}× |`,
  );
  return [
    `### ${new Date().toISOString().slice(0, 10)} — \`npm run bench:race\``,
    '',
    `BENCH_PODS=${String(PODS)} BENCH_CONCURRENCY=${String(CONCURRENCY)} BENCH_ROUNDS=${String(ROUNDS)} ` +
      `BENCH_WARMUP=${String(WARMUP)}; ${String(os.cpus().length)} × ${os.cpus()[0]?.model ?? 'CPU'}, ` +
      `Node ${process.version}, kube-apiserver ${v.kubernetes}, etcd ${v.etcd} (--unsafe-no-fsync). ` +
      `Per batch: ${String(PODS)} pods created through the API server, then for each (concurrency ` +
      `${String(CONCURRENCY)}) \`ip netns add\` + bridge CNI ADD with the mode's IPAM, then CNI DEL + ` +
      "`ip netns del`; seconds of each phase. ADD p50/p99: one pod's netns + ADD, in ms.",
    '',
    '| round | mode | create s | ADD s | ADD p50 ms | ADD p99 ms | DEL s | total s |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    '| mode (mean of rounds) | create s | ADD s | DEL s | total s | ÷ host-local |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...means,
    '',
    `podlease total ÷ host-local total: **${(sum('podlease', total) / base).toFixed(2)}×** ` +
      `(target ≤ 2.5×); through the API server: ${(sum('podlease-api', total) / base).toFixed(2)}×.`,
    '',
  ].join('\n');
}
