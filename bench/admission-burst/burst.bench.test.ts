// bench:admission-burst — pods/s of pod CREATE calls straight to the e2e kube-apiserver (no
// kubelet) at concurrency 8, in interleaved rounds into three kinds of namespace:
//
//   none      no webhook matches the namespace
//   bare      a bare express HTTPS webhook (bench/webhook/bare-server.mjs) answers every pod with
//             a constant JSONPatch of five annotations: the cost of having any webhook at all
//   podlease  `podlease serve` on Redis leases every pod an address and patches its annotations
//
// so podlease's own cost is told apart from the cost of a webhook. Each batch creates BENCH_PODS
// pods into a fresh namespace; the order of the three modes rotates every round. The client is a
// bare node:https keep-alive agent (client-node's own CPU would crowd the 2 cores the API server
// needs). Besides pods/s it reads the CPU time the webhook processes and the API server spent per
// pod (podlease_process_cpu_seconds_total; /proc/<pid>/stat). Loopback only; every loop is bounded
// by its pod count.
//
//   npm run bench:admission-burst
//   BENCH_PODS=200 BENCH_CONCURRENCY=8 BENCH_ROUNDS=5 BENCH_WARMUP=60 (defaults)
//   BENCH_PROFILE=<dir>   runs podlease serve with --cpu-prof into <dir> (written when it stops;
//                         wall-clock samples: on 2 busy cores, time spent descheduled inside a
//                         socket write shows up as that write)
//   BENCH_NODE_ARGS="…"   other Node flags for podlease serve (e.g. --perf-basic-prof for perf)
//   BENCH_RECORD=1        appends the section to bench/RESULTS.md
/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- @kubernetes/client-node's
   generated models are classes without behaviour; its API is meant to take object literals. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import {
  apiserverPid,
  type BurstClient,
  burstClient,
  cpuMsOf,
  envInt,
  quantile,
  report,
  rotatingRounds,
} from '../lib/kube-burst.js';
import { issueCertificate } from '../../test/e2e/cluster/certs.js';
import { controlPlaneVersions } from '../../test/e2e/cluster/binaries.js';
import { freePort } from '../../test/e2e/cluster/process.js';
import { waitUntil } from '../../test/e2e/cluster/wait.js';
import { type Podlease, startPodlease } from '../../test/e2e/podlease.js';
import { inSubnet, OWNED } from '../../test/e2e/pods.js';

const skip = inject('e2eSkip');
if (skip) console.warn(`\n!! SKIPPING bench:admission-burst: ${skip}\n`);

const PODS = envInt('BENCH_PODS', 200);
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 8);
const ROUNDS = envInt('BENCH_ROUNDS', 5);
const WARMUP = envInt('BENCH_WARMUP', 60);
const RECORD = process.env.BENCH_RECORD === '1';
const PROFILE_DIR = process.env.BENCH_PROFILE;
const POOL = { name: 'bench', cidr: '10.250.0.0/16', gateway: '10.250.0.1', default: true };
const BARE_LABEL = 'podlease.io/bench-bare';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const MODES = ['none', 'bare', 'podlease'] as const;
type Mode = (typeof MODES)[number];
const LABEL: Record<Mode, string> = {
  none: 'no webhook',
  bare: 'bare webhook',
  podlease: 'podlease',
};

interface Batch {
  readonly mode: Mode;
  readonly round: number;
  readonly seconds: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU ms per pod of the webhook process (none: 0) and of kube-apiserver. */
  readonly webhookCpuMs: number;
  readonly apiserverCpuMs: number;
}

async function metricValue(metricsUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${metricsUrl}/metrics`)).text();
  const line = text.split('\n').find(l => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`${metricsUrl}/metrics has no ${name}`);
  return Number(line.slice(name.length + 1));
}

describe.skipIf(skip !== '')('bench:admission-burst', () => {
  const cleanUp: (() => Promise<void>)[] = [];
  let core: k8s.CoreV1Api;
  let podlease: Podlease;
  let bare: ChildProcess;
  let client: BurstClient;
  let apiPid: number;
  let profileDir: string | undefined;

  const createNamespace = async (mode: Mode, name: string): Promise<void> => {
    if (mode === 'podlease') {
      await podlease.createNamespace(name);
      return;
    }
    await core.createNamespace({
      body: { metadata: { name, labels: mode === 'bare' ? { [BARE_LABEL]: 'true' } : {} } },
    });
    await waitUntil(`serviceaccount ${name}/default`, () =>
      core.readNamespacedServiceAccount({ namespace: name, name: 'default' }),
    );
  };

  const webhookCpuMs = async (mode: Mode): Promise<number> => {
    if (mode === 'podlease')
      return 1000 * (await metricValue(podlease.metricsUrl, 'podlease_process_cpu_seconds_total'));
    if (mode === 'bare' && bare.pid !== undefined) return cpuMsOf(bare.pid);
    return 0;
  };

  /** Checks what was measured: podlease pods carry distinct in-pool addresses, bare ones the constant, none nothing. */
  const check = async (mode: Mode, namespace: string, count: number): Promise<void> => {
    const list = (await core.listNamespacedPod({ namespace })).items;
    expect(list).toHaveLength(count);
    const ips = list.map(p => p.metadata?.annotations?.[OWNED.ip]);
    if (mode === 'podlease') {
      expect(new Set(ips).size).toBe(count);
      for (const ip of ips) expect(inSubnet(ip ?? '', POOL.cidr)).toBe(true);
    } else if (mode === 'bare') {
      expect(ips.every(ip => ip === '10.250.0.10')).toBe(true);
    } else {
      expect(ips.every(ip => ip === undefined)).toBe(true);
    }
  };

  const batch = async (mode: Mode, round: number, pods: number): Promise<Batch> => {
    const namespace = `burst-${mode}-${String(round)}`;
    await createNamespace(mode, namespace);
    const [web0, api0] = [await webhookCpuMs(mode), cpuMsOf(apiPid)];
    const { seconds, latencies } = await client.createPods(namespace, pods);
    const [web1, api1] = [await webhookCpuMs(mode), cpuMsOf(apiPid)];
    await check(mode, namespace, pods);
    const sorted = [...latencies].sort((a, b) => a - b);
    return {
      mode,
      round,
      seconds,
      p50Ms: quantile(sorted, 0.5),
      p99Ms: quantile(sorted, 0.99),
      webhookCpuMs: (web1 - web0) / pods,
      apiserverCpuMs: (api1 - api0) / pods,
    };
  };

  beforeAll(async () => {
    const kubeconfigPath = inject('kubeconfigPath');
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
    const admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
    client = burstClient(kubeconfigPath, CONCURRENCY);
    cleanUp.push(() => {
      client.close();
      return Promise.resolve();
    });
    apiPid = apiserverPid(client.server.port);

    if (PROFILE_DIR !== undefined) profileDir = path.resolve(PROFILE_DIR);
    podlease = await startPodlease({
      name: 'burst',
      kubeconfigPath,
      caCertPath: inject('caCertPath'),
      caKeyPath: inject('caKeyPath'),
      redisUrl: inject('e2eRedisUrl'),
      pools: [POOL],
      nodeArgs: [
        ...(profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir]),
        ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(a => a !== ''),
      ],
    });
    cleanUp.push(() => podlease.stop());
    await podlease.register();

    // The bare webhook: its own certificate from the cluster CA, its own configuration.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'podlease-burst-'));
    cleanUp.push(() => {
      rmSync(dir, { recursive: true, force: true });
      return Promise.resolve();
    });
    const serving = await issueCertificate(
      dir,
      { certPath: inject('caCertPath'), keyPath: inject('caKeyPath') },
      { name: 'bare', commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'], usage: 'server' },
    );
    const port = await freePort();
    bare = spawn(
      process.execPath,
      [
        path.join(ROOT, 'bench/webhook/bare-server.mjs'),
        String(port),
        serving.certPath,
        serving.keyPath,
        'patch',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    cleanUp.push(async () => {
      if (bare.exitCode !== null) return;
      const exited = new Promise(r => {
        bare.once('exit', r);
      });
      bare.kill('SIGTERM');
      await exited;
    });
    await new Promise<void>((resolve, reject) => {
      bare.stdout?.once('data', () => {
        resolve();
      });
      bare.once('exit', code => {
        reject(new Error(`bare webhook exited (${String(code)})`));
      });
    });
    const configName = 'podlease-bench-bare';
    await admission.createMutatingWebhookConfiguration({
      body: {
        metadata: { name: configName },
        webhooks: [
          {
            name: 'bare.bench.podlease.io',
            clientConfig: {
              url: `https://127.0.0.1:${String(port)}/mutate`,
              caBundle: readFileSync(inject('caCertPath')).toString('base64'),
            },
            rules: [
              {
                operations: ['CREATE'],
                apiGroups: [''],
                apiVersions: ['v1'],
                resources: ['pods'],
                scope: 'Namespaced',
              },
            ],
            namespaceSelector: { matchLabels: { [BARE_LABEL]: 'true' } },
            admissionReviewVersions: ['v1'],
            sideEffects: 'None',
            failurePolicy: 'Fail',
            timeoutSeconds: 10,
          },
        ],
      },
    });
    cleanUp.push(async () => {
      await admission
        .deleteMutatingWebhookConfiguration({ name: configName })
        .catch(() => undefined);
    });
    // The API server picks the configuration up asynchronously: wait for the constant patch.
    await createNamespace('bare', 'burst-bare-probe');
    await waitUntil(
      'the API server to call the bare webhook',
      async () => {
        const pod = await core.createNamespacedPod({
          namespace: 'burst-bare-probe',
          dryRun: 'All',
          body: {
            metadata: { generateName: 'probe-' },
            spec: { containers: [{ name: 'app', image: 'registry.invalid/x:1' }] },
          },
        });
        return pod.metadata?.annotations?.[OWNED.ip] === '10.250.0.10' ? true : undefined;
      },
      30_000,
      200,
    );
  });

  afterAll(async () => {
    for (const stop of cleanUp.reverse()) await stop();
    if (profileDir !== undefined) console.log(`podlease serve CPU profile(s) in ${profileDir}`);
  });

  it(`creates ${String(PODS)} pods per batch without a webhook, with a bare one and with podlease`, async () => {
    // Warm-up in every mode (connections, caches, JIT); not counted.
    for (const mode of MODES) await batch(mode, 0, WARMUP);
    const batches = await rotatingRounds(
      MODES,
      ROUNDS,
      (mode, round) => batch(mode, round, PODS),
      b =>
        `${b.mode.padEnd(8)} ${String(PODS)} pods in ${b.seconds.toFixed(2)} s: ` +
        `${(PODS / b.seconds).toFixed(1)} pods/s, p50 ${b.p50Ms.toFixed(1)} ms, ` +
        `webhook ${b.webhookCpuMs.toFixed(2)} ms CPU/pod, apiserver ${b.apiserverCpuMs.toFixed(2)} ms CPU/pod`,
    );
    report(markdown(batches), RECORD);
    for (const mode of MODES) expect(batches.filter(b => b.mode === mode)).toHaveLength(ROUNDS);
  });
});

function markdown(batches: readonly Batch[]): string {
  const of = (mode: Mode): Batch[] => batches.filter(b => b.mode === mode);
  const rate = (mode: Mode): number =>
    (of(mode).length * PODS) / of(mode).reduce((s, b) => s + b.seconds, 0);
  const mean = (mode: Mode, pick: (b: Batch) => number): number =>
    of(mode).reduce((s, b) => s + pick(b), 0) / of(mode).length;
  const v = controlPlaneVersions();
  const rows = batches.map(
    b =>
      `| ${String(b.round)} | ${LABEL[b.mode]} | ${(PODS / b.seconds).toFixed(1)} | ${b.p50Ms.toFixed(1)} | ` +
      `${b.p99Ms.toFixed(1)} | ${b.mode === 'none' ? '–' : b.webhookCpuMs.toFixed(2)} | ${b.apiserverCpuMs.toFixed(2)} |`,
  );
  const totals = MODES.map(
    m =>
      `| ${LABEL[m]} | ${rate(m).toFixed(1)} | ${m === 'none' ? '–' : mean(m, b => b.webhookCpuMs).toFixed(2)} | ` +
      `${mean(m, b => b.apiserverCpuMs).toFixed(2)} |`,
  );
  const ratio = rate('podlease') / rate('bare');
  return [
    `### ${new Date().toISOString().slice(0, 10)} — \`npm run bench:admission-burst\``,
    '',
    `BENCH_PODS=${String(PODS)} BENCH_CONCURRENCY=${String(CONCURRENCY)} BENCH_ROUNDS=${String(ROUNDS)} ` +
      `BENCH_WARMUP=${String(WARMUP)}; ${String(os.cpus().length)} × ${os.cpus()[0]?.model ?? 'CPU'}, ` +
      `Node ${process.version}, kube-apiserver ${v.kubernetes}, etcd ${v.etcd} (--unsafe-no-fsync), loopback. ` +
      'Pods created straight to the API server (no kubelet) by a keep-alive node:https client; each batch ' +
      'into a fresh namespace; the order of the modes rotates every round. CPU columns: ms of CPU per pod ' +
      'of the webhook process and of kube-apiserver during the batch.',
    '',
    '| round | mode | pods/s | p50 ms | p99 ms | webhook CPU ms/pod | apiserver CPU ms/pod |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    '| mode (all rounds) | pods/s | webhook CPU ms/pod | apiserver CPU ms/pod |',
    '| --- | ---: | ---: | ---: |',
    ...totals,
    '',
    `podlease ÷ bare webhook: **${ratio.toFixed(2)}×** (target ≥ 0.9×); bare webhook ÷ no webhook: ` +
      `${(rate('bare') / rate('none')).toFixed(2)}×.`,
    '',
  ].join('\n');
}
