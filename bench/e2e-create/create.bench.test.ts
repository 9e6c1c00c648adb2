// bench:e2e-create — pods/s of pod CREATE calls through the real kube-apiserver, with podlease in
// the admission path (MutatingWebhookConfiguration → local `podlease serve` → Redis) and without
// it (webhook configurations deleted), in the same run against the same cluster.
//
// Bare pods (generateName, one container), created by one client with bounded concurrency; no
// kubelet (the pods stay unscheduled: creation throughput is what is measured). Each measured
// batch goes to a fresh namespace; modes alternate, and the order flips every round. Loopback
// only; every loop is bounded by its pod count.
//
//   npm run bench:e2e-create
//   BENCH_PODS=500 BENCH_CONCURRENCY=16 BENCH_ROUNDS=3 BENCH_WARMUP=100 (defaults)
//   BENCH_RECORD=1 rewrites "## End-to-end pod creation (bench:e2e-create)" in bench/RESULTS.md
/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- @kubernetes/client-node's
   generated models are classes without behaviour; its API is meant to take object literals. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { controlPlaneVersions } from '../../test/e2e/cluster/binaries.js';
import { type Podlease, startPodlease } from '../../test/e2e/podlease.js';
import { inSubnet, OWNED } from '../../test/e2e/pods.js';
import { envInt } from '../lib/kube-burst.js';

const skip = inject('e2eSkip');
if (skip) console.warn(`\n!! SKIPPING bench:e2e-create: ${skip}\n`);

const PODS = envInt('BENCH_PODS', 500);
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 16);
const ROUNDS = envInt('BENCH_ROUNDS', 3);
const WARMUP = envInt('BENCH_WARMUP', 100);
const RECORD = process.env.BENCH_RECORD === '1';
const MIN_RATIO = 0.8;
const POOL = { name: 'bench', cidr: '10.240.0.0/16', gateway: '10.240.0.1', default: true };
const CONTAINER = { name: 'app', image: 'registry.invalid/never-pulled:1' };
const RESULTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../RESULTS.md');
const SECTION = '## End-to-end pod creation (bench:e2e-create)';

type Mode = 'without' | 'with';

interface Batch {
  readonly mode: Mode;
  readonly round: number;
  readonly pods: number;
  readonly seconds: number;
  readonly podsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly namespace: string;
}

const quantile = (sorted: readonly number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;

/** Creates `count` bare pods with `concurrency` calls in flight; per-call latencies in ms. */
async function createPods(
  core: k8s.CoreV1Api,
  namespace: string,
  count: number,
  concurrency: number,
): Promise<{ seconds: number; latencies: number[] }> {
  let next = 0;
  const latencies: number[] = [];
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      const t0 = performance.now();
      await core.createNamespacedPod({
        namespace,
        body: {
          metadata: { generateName: 'bench-', labels: { app: 'bench' } },
          spec: { containers: [CONTAINER] },
        },
      });
      latencies.push(performance.now() - t0);
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { seconds: (performance.now() - start) / 1000, latencies };
}

function markdown(batches: readonly Batch[], ratio: number, rate: Record<Mode, number>): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const v = controlPlaneVersions();
  const rows = batches.map(
    b =>
      `| ${b.round} | ${b.mode === 'with' ? 'podlease' : 'no webhook'} | ${b.pods} | ${b.seconds.toFixed(2)} | ` +
      `${b.podsPerSecond.toFixed(1)} | ${b.p50Ms.toFixed(1)} | ${b.p99Ms.toFixed(1)} |`,
  );
  return [
    SECTION,
    '',
    `Command: \`npm run bench:e2e-create\` (BENCH_PODS=${PODS} BENCH_CONCURRENCY=${CONCURRENCY} ` +
      `BENCH_ROUNDS=${ROUNDS} BENCH_WARMUP=${WARMUP}); recorded ${new Date().toISOString()} ` +
      `on ${os.cpus().length} × ${cpu}, Node ${process.version}, kube-apiserver ${v.kubernetes}, ` +
      `etcd ${v.etcd} (--unsafe-no-fsync), all on loopback.`,
    '',
    `${PODS} bare pods per batch, created by one @kubernetes/client-node client with ${CONCURRENCY} ` +
      'calls in flight, into a fresh namespace per batch, without a kubelet. "podlease": a ' +
      'MutatingWebhookConfiguration (pods CREATE, failurePolicy Fail) calls a local ' +
      '`podlease serve` over HTTPS, which leases each pod an address in Redis (pool /16) and ' +
      'patches five annotations; "no webhook": the webhook configurations deleted. Both modes ' +
      'alternate in one run on one cluster; every podlease pod was checked to carry a distinct ' +
      'in-pool `podlease.io/ip`, every other pod none.',
    '',
    '| round | mode | pods | seconds | pods/s | p50 ms | p99 ms |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    `Total: ${rate.with.toFixed(1)} pods/s with podlease, ${rate.without.toFixed(1)} pods/s ` +
      `without; ratio **${ratio.toFixed(2)}** (required ≥ ${MIN_RATIO}).`,
    '',
    'Notes: apiserver, etcd, controller-manager, podlease serve, redis-server and the client share ' +
      'the machine, so the API server (not the webhook) sets the pace and batches of one mode vary ' +
      'by ±15 % from round to round; the ratio of the totals over alternating rounds is the figure ' +
      'the bench checks. The webhook call adds roughly one loopback HTTPS round trip plus one ' +
      'Redis script per pod to each create.',
    '',
  ].join('\n');
}

/** Replaces (or appends) this bench's section of bench/RESULTS.md. */
function record(section: string): void {
  const text = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '# Benchmark results\n';
  const start = text.indexOf(SECTION);
  let out: string;
  if (start < 0) {
    out = `${text.trimEnd()}\n\n${section}`;
  } else {
    const after = text.indexOf('\n## ', start + SECTION.length);
    out = text.slice(0, start) + section + (after < 0 ? '' : text.slice(after + 1));
  }
  writeFileSync(RESULTS, out.endsWith('\n') ? out : `${out}\n`);
}

describe.skipIf(skip !== '')('bench:e2e-create', () => {
  let core: k8s.CoreV1Api;
  let podlease: Podlease;
  const cleanUp: (() => Promise<void>)[] = [];
  let registered = false;

  const setMode = async (mode: Mode): Promise<void> => {
    if (mode === 'with' && !registered) await podlease.register();
    if (mode === 'without' && registered) await podlease.unregister();
    registered = mode === 'with';
  };

  const batch = async (mode: Mode, round: number, pods: number): Promise<Batch> => {
    await setMode(mode);
    const namespace = `bench-${mode}-${round}`;
    await podlease.createNamespace(namespace);
    const { seconds, latencies } = await createPods(core, namespace, pods, CONCURRENCY);
    const sorted = [...latencies].sort((a, b) => a - b);
    // Check what was measured: podlease pods carry distinct in-pool addresses, others none.
    const list = (await core.listNamespacedPod({ namespace })).items;
    expect(list).toHaveLength(pods);
    const ips = list.map(p => p.metadata?.annotations?.[OWNED.ip]);
    if (mode === 'with') {
      expect(new Set(ips).size).toBe(pods);
      for (const ip of ips) expect(inSubnet(ip ?? '', POOL.cidr)).toBe(true);
    } else {
      expect(ips.every(ip => ip === undefined)).toBe(true);
    }
    return {
      mode,
      round,
      pods,
      seconds,
      podsPerSecond: pods / seconds,
      p50Ms: quantile(sorted, 0.5),
      p99Ms: quantile(sorted, 0.99),
      namespace,
    };
  };

  beforeAll(async () => {
    const kubeconfigPath = inject('kubeconfigPath');
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
    podlease = await startPodlease({
      name: 'bench',
      kubeconfigPath,
      caCertPath: inject('caCertPath'),
      caKeyPath: inject('caKeyPath'),
      redisUrl: inject('e2eRedisUrl'),
      pools: [POOL],
    });
    cleanUp.push(() => podlease.stop());
  });

  afterAll(async () => {
    for (const stop of cleanUp) await stop();
  });

  it(`creates ${PODS} pods with podlease at ≥ ${MIN_RATIO} of the rate without it`, async () => {
    // Warm-up in both modes (connections, caches, JIT); not counted.
    await batch('with', 0, WARMUP);
    await batch('without', 0, WARMUP);
    const batches: Batch[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const order: Mode[] = round % 2 === 1 ? ['without', 'with'] : ['with', 'without'];
      for (const mode of order) {
        const b = await batch(mode, round, PODS);
        console.log(
          `round ${round} ${mode.padEnd(7)} ${b.pods} pods in ${b.seconds.toFixed(2)} s: ` +
            `${b.podsPerSecond.toFixed(1)} pods/s, p50 ${b.p50Ms.toFixed(1)} ms, p99 ${b.p99Ms.toFixed(1)} ms`,
        );
        batches.push(b);
      }
    }
    const rate = (mode: Mode): number => {
      const mine = batches.filter(b => b.mode === mode);
      return mine.reduce((n, b) => n + b.pods, 0) / mine.reduce((s, b) => s + b.seconds, 0);
    };
    const rates = { with: rate('with'), without: rate('without') };
    const ratio = rates.with / rates.without;
    const section = markdown(batches, ratio, rates);
    console.log(`\n${section}`);
    if (RECORD) record(section);
    expect(ratio).toBeGreaterThanOrEqual(MIN_RATIO);
  });
});
