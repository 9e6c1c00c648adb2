// A bare node:https keep-alive client of the e2e API server for the e2e benches: pod CREATE
// calls with bounded concurrency, with far less client CPU than @kubernetes/client-node (the
// client shares 2 cores with the API server it measures). Admin credentials from the e2e
// kubeconfig (JSON: a CA file, a client certificate and key).
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'node:https';

const CALL_TIMEOUT_MS = 30_000;
const CLK_TCK = 100;

interface KubeconfigJson {
  clusters: { cluster: { server: string; 'certificate-authority': string } }[];
  users: { user: { 'client-certificate': string; 'client-key': string } }[];
}

/** What the API server answered for a created pod (the fields the benches read). */
export interface CreatedPod {
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly uid: string;
    readonly annotations?: Record<string, string>;
  };
}

export interface BurstClient {
  readonly server: URL;
  /** Creates `count` bare pods in `namespace`, `concurrency` calls in flight. */
  createPods(
    namespace: string,
    count: number,
  ): Promise<{ seconds: number; latencies: number[]; pods: CreatedPod[] }>;
  close(): void;
}

export const quantile = (sorted: readonly number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;

export function burstClient(kubeconfigPath: string, concurrency: number): BurstClient {
  const raw = JSON.parse(readFileSync(kubeconfigPath, 'utf8')) as KubeconfigJson;
  const cluster = raw.clusters[0]?.cluster;
  const user = raw.users[0]?.user;
  if (cluster === undefined || user === undefined) {
    throw new Error(`${kubeconfigPath}: no cluster or user`);
  }
  const server = new URL(cluster.server);
  const agent = new Agent({
    keepAlive: true,
    maxSockets: concurrency,
    ca: readFileSync(cluster['certificate-authority']),
    cert: readFileSync(user['client-certificate']),
    key: readFileSync(user['client-key']),
  });

  const createPod = (namespace: string): Promise<{ ms: number; pod: CreatedPod }> =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { generateName: 'bench-' },
        spec: { containers: [{ name: 'app', image: 'registry.invalid/never-pulled:1' }] },
      });
      const t0 = performance.now();
      const req = request(
        new URL(`/api/v1/namespaces/${namespace}/pods`, server),
        {
          method: 'POST',
          agent,
          timeout: CALL_TIMEOUT_MS,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        res => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            if (res.statusCode === 201) {
              resolve({ ms: performance.now() - t0, pod: JSON.parse(text) as CreatedPod });
            } else {
              reject(
                new Error(`create pod in ${namespace}: HTTP ${String(res.statusCode)} ${text}`),
              );
            }
          });
        },
      );
      req.on('timeout', () => {
        req.destroy(
          new Error(`create pod in ${namespace}: no answer in ${String(CALL_TIMEOUT_MS)} ms`),
        );
      });
      req.on('error', reject);
      req.end(body);
    });

  return {
    server,
    async createPods(namespace, count) {
      let next = 0;
      const latencies: number[] = [];
      const pods: CreatedPod[] = [];
      const worker = async (): Promise<void> => {
        while (next < count) {
          next++;
          const { ms, pod } = await createPod(namespace);
          latencies.push(ms);
          pods.push(pod);
        }
      };
      const start = performance.now();
      await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
      return { seconds: (performance.now() - start) / 1000, latencies, pods };
    },
    close() {
      agent.destroy();
    },
  };
}

/** utime + stime of a process, in ms. */
export function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

/** The kube-apiserver process serving `port` (other sessions may run their own). */
export function apiserverPid(port: string): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (path.basename(cmd[0] ?? '') === 'kube-apiserver' && cmd.includes(`--secure-port=${port}`))
        return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no kube-apiserver process with --secure-port=${port}`);
}

/** A positive integer from the environment, else `fallback`. */
export const envInt = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer`);
  return value;
};

/**
 * `rounds` rounds of one batch per mode, the order of the modes rotating every round (so no
 * mode always runs first or last); logs each batch's line; the batches in run order.
 */
export async function rotatingRounds<M, B>(
  modes: readonly M[],
  rounds: number,
  run: (mode: M, round: number) => Promise<B>,
  line: (b: B) => string,
): Promise<B[]> {
  const batches: B[] = [];
  for (let round = 1; round <= rounds; round++) {
    const order = modes.map((_, i) => modes[(i + round) % modes.length] as M);
    for (const mode of order) {
      const b = await run(mode, round);
      console.log(`round ${String(round)} ${line(b)}`);
      batches.push(b);
    }
  }
  return batches;
}

/** Prints a bench's Markdown section; with `record`, appends it to bench/RESULTS.md. */
export function report(section: string, record: boolean): void {
  console.log(`\n${section}`);
  if (record) {
    appendFileSync(fileURLToPath(new URL('../RESULTS.md', import.meta.url)), `\n${section}`);
  }
}
