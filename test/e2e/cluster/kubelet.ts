// A kubelet stand-in for e2e tests. It registers a fake Node, binds every pod that has no node to
// it (there is no scheduler), gives each non-hostNetwork pod a network namespace and runs the CNI
// `bridge` plugin (with a configurable IPAM block) in it exactly as a container runtime would,
// then reports the pod Running and Ready with the address from the CNI result. On deletion it
// runs CNI DEL, removes the namespace and finishes the deletion (grace period 0). Given a
// conflist file (`conflistPath`, e.g. the one the chart's CNI installer wrote), it runs that
// instead, the way libcni does: each plugin in turn with the previous result, and
// `runtimeConfig` for the capabilities a plugin declares.
//
// Network safety: the bridge is a test bridge with no uplink and no masquerading, and the IPAM
// default is a test-only subnet without routes, so no namespace gets a route off the machine.
/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment -- @kubernetes/client-node's
   generated models are classes without behaviour; its API is meant to take object literals. */
import { execFile, execFileSync, spawn } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { claimDir, sweepStaleDirs } from './process.js';

import * as k8s from '@kubernetes/client-node';

const execFileAsync = promisify(execFile);

export const DEFAULT_NODE_NAME = 'podlease-e2e-node';
export const DEFAULT_BRIDGE = 'plbr0';
export const DEFAULT_TEST_SUBNET = '10.250.0.0/24';
export const NETNS_PREFIX = 'plt-';
/** Where `npm run build` puts the podlease CNI plugin (docs/design.md §8). */
export const PODLEASE_CNI_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../dist/cni',
);
export const SYSTEM_CNI_DIR = '/usr/lib/cni';
const CNI_TIMEOUT_MS = 30_000;
const INFORMER_RESTART_MS = 1_000;
const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';
const WORK_DIR_PREFIX = 'podlease-e2e-kubelet-';
/** Files in the kubelet's work dir that let a later run clean up after a crashed one. */
const STATE_NETNS = 'netns';
const STATE_BRIDGE = 'bridge';
const STATE_IP_FORWARD = 'ip_forward.before';

/** Undoes what a kubelet whose process died left behind: its netns, bridge and ip_forward. */
function cleanUpAfterCrash(dir: string): void {
  const read = (file: string): string => {
    try {
      return readFileSync(path.join(dir, file), 'utf8').trim();
    } catch {
      return '';
    }
  };
  const quiet = (args: string[]): void => {
    try {
      execFileSync('ip', args, { stdio: 'ignore' });
    } catch {
      // already gone
    }
  };
  for (const netns of read(STATE_NETNS).split('\n').filter(Boolean)) quiet(['netns', 'del', netns]);
  const bridge = read(STATE_BRIDGE);
  if (bridge) quiet(['link', 'del', bridge]);
  const ipForward = read(STATE_IP_FORWARD);
  if (ipForward === '0' || ipForward === '1') writeFileSync(IP_FORWARD, ipForward);
}

/** The IPAM block for the podlease plugin. */
export function podleaseIpam(kubeconfigPath: string): Record<string, unknown> {
  return { type: 'podlease', kubeconfig: kubeconfigPath };
}

/** A host-local IPAM block on a test-only subnet, state kept in `dataDir`. */
export function hostLocalIpam(
  dataDir: string,
  subnet = DEFAULT_TEST_SUBNET,
): Record<string, unknown> {
  return { type: 'host-local', ranges: [[{ subnet }]], dataDir };
}

const POD_ANNOTATIONS_CAPABILITY = 'io.kubernetes.cri.pod-annotations';

interface Conflist {
  readonly cniVersion?: string;
  readonly name?: string;
  readonly plugins?: readonly Record<string, unknown>[];
}

/**
 * libcni's per-plugin network configuration of a conflist: the plugin's own fields plus the
 * list's name and cniVersion, `runtimeConfig` holding the capability arguments the plugin
 * declares, and the previous plugin's result.
 */
export function conflistNetconf(
  list: Conflist,
  plugin: Record<string, unknown>,
  capabilityArgs: Readonly<Record<string, unknown>>,
  prevResult: CniResult | undefined,
): Record<string, unknown> {
  const declared = (plugin.capabilities ?? {}) as Record<string, unknown>;
  const runtimeConfig = Object.fromEntries(
    Object.entries(capabilityArgs).filter(([name]) => declared[name] === true),
  );
  return {
    ...plugin,
    cniVersion: list.cniVersion,
    name: list.name,
    ...(Object.keys(runtimeConfig).length > 0 ? { runtimeConfig } : {}),
    ...(prevResult ? { prevResult } : {}),
  };
}

export interface KubeletOptions {
  readonly kubeconfigPath: string;
  readonly nodeName?: string;
  /** Only handle pods in this namespace (default: all namespaces). */
  readonly namespace?: string;
  /** Linux bridge the `bridge` plugin creates (≤ 15 chars); removed by stop(). */
  readonly bridge?: string;
  /**
   * The netconf's `ipam` block. Default: host-local on DEFAULT_TEST_SUBNET with its state in the
   * kubelet's temp dir. A function receives that temp dir.
   */
  readonly ipam?: Record<string, unknown> | ((workDir: string) => Record<string, unknown>);
  readonly cniVersion?: string;
  /** CNI_PATH directories (default: PODLEASE_CNI_DIR, SYSTEM_CNI_DIR). */
  readonly cniPath?: readonly string[];
  /**
   * Pass the pod's annotations as runtimeConfig["io.kubernetes.cri.pod-annotations"], as containerd
   * does for plugins that declare the capability.
   */
  readonly passPodAnnotations?: boolean;
  /** Extra environment for the CNI plugin (e.g. a log level). */
  readonly cniEnv?: Readonly<Record<string, string>>;
  /**
   * A conflist to wire pods with instead of the built-in bridge netconf (`ipam` is then unused).
   * Read at every ADD and DEL, as a runtime re-reads its conf dir. With `passPodAnnotations`,
   * the annotations go only to plugins that declare the `io.kubernetes.cri.pod-annotations`
   * capability, as containerd does.
   */
  readonly conflistPath?: string;
}

export interface RunningPod {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  /** Network namespace name (`ip netns exec <netns> …`); undefined for hostNetwork pods. */
  readonly netns: string | undefined;
  readonly containerId: string;
  /** Addresses from the CNI result, without prefix length. */
  readonly ips: readonly string[];
  readonly cniResult: CniResult | undefined;
}

export interface CniResult {
  readonly cniVersion?: string;
  readonly ips?: readonly { address: string; gateway?: string; interface?: number }[];
  readonly interfaces?: readonly { name: string; mac?: string; sandbox?: string }[];
  readonly routes?: readonly { dst: string; gw?: string }[];
}

export interface CniFailure {
  readonly command: 'ADD' | 'DEL';
  readonly pod: string;
  readonly message: string;
}

export interface Kubelet {
  readonly nodeName: string;
  readonly bridge: string;
  readonly workDir: string;
  /** Log of what the stand-in did, one line per action. */
  readonly logPath: string;
  /** Pods set up by this kubelet, by `namespace/name`. */
  pods(): ReadonlyMap<string, RunningPod>;
  /** CNI failures so far (ADD failures leave the pod Pending with a FailedCreatePodSandBox event). */
  failures(): readonly CniFailure[];
  /** Resolves once all queued pod work has finished. */
  idle(): Promise<void>;
  /** Stops watching, tears down every namespace it created and the bridge. Idempotent. */
  stop(): Promise<void>;
}

class CniError extends Error {
  readonly code: number | undefined;
  constructor(message: string, code?: number) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

export interface CniInvocation {
  readonly command: 'ADD' | 'DEL';
  readonly containerId: string;
  readonly netnsPath: string;
  readonly pod: k8s.V1Pod;
  readonly netconf: Record<string, unknown>;
}

function podKey(pod: k8s.V1Pod): string {
  return `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
}

function findPlugin(dirs: readonly string[], type: string): string {
  for (const dir of dirs) {
    const candidate = path.join(dir, type);
    if (existsSync(candidate)) return candidate;
  }
  throw new CniError(`CNI plugin ${type} not found in ${dirs.join(':')}`);
}

export async function runCni(
  plugin: string,
  inv: CniInvocation,
  cniPath: readonly string[],
  extraEnv: Readonly<Record<string, string>>,
): Promise<string> {
  const meta = inv.pod.metadata;
  const env = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    ...extraEnv,
    CNI_COMMAND: inv.command,
    CNI_CONTAINERID: inv.containerId,
    CNI_NETNS: inv.netnsPath,
    CNI_IFNAME: 'eth0',
    CNI_PATH: cniPath.join(':'),
    CNI_ARGS: [
      'IgnoreUnknown=1',
      `K8S_POD_NAMESPACE=${meta?.namespace ?? ''}`,
      `K8S_POD_NAME=${meta?.name ?? ''}`,
      `K8S_POD_INFRA_CONTAINER_ID=${inv.containerId}`,
      `K8S_POD_UID=${meta?.uid ?? ''}`,
    ].join(';'),
  };
  return new Promise((resolve, reject) => {
    const child = spawn(plugin, [], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: CNI_TIMEOUT_MS,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', err => {
      reject(new CniError(`${plugin}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      if (code === 0) {
        resolve(stdout);
        return;
      }
      let message = `${plugin} ${inv.command} exited ${String(code ?? signal)}`;
      let cniCode: number | undefined;
      try {
        const parsed = JSON.parse(stdout) as { code?: number; msg?: string; details?: string };
        cniCode = parsed.code;
        message += `: CNI error ${String(parsed.code)}: ${parsed.msg ?? ''}${parsed.details ? ` (${parsed.details})` : ''}`;
      } catch {
        message += `: ${stdout.trim()}`;
      }
      if (stderr.trim()) message += `; stderr: ${stderr.trim().slice(-2000)}`;
      reject(new CniError(message, cniCode));
    });
    child.stdin.end(JSON.stringify(inv.netconf));
  });
}

async function ip(args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('ip', args);
  return stdout;
}

async function listNetns(): Promise<string[]> {
  const out = await ip(['-j', 'netns', 'list']).catch(() => '');
  if (!out.trim()) return [];
  return (JSON.parse(out) as { name: string }[]).map(n => n.name);
}

async function deleteNetns(name: string): Promise<void> {
  if ((await listNetns()).includes(name)) await ip(['netns', 'del', name]);
}

function isApiStatus(err: unknown, code: number): boolean {
  return err instanceof k8s.ApiException && (err as k8s.ApiException<unknown>).code === code;
}

function runningStatus(pod: k8s.V1Pod, ips: readonly string[]): Record<string, unknown> {
  const now = new Date().toISOString();
  const condition = (type: string): Record<string, string> => ({
    type,
    status: 'True',
    lastTransitionTime: now,
  });
  const containerStatus = (c: k8s.V1Container, init: boolean): Record<string, unknown> => ({
    name: c.name,
    image: c.image ?? '',
    imageID: '',
    containerID: `podlease-e2e://${pod.metadata?.uid ?? ''}-${c.name}`,
    ready: !init,
    started: !init,
    restartCount: 0,
    state: init
      ? { terminated: { exitCode: 0, reason: 'Completed', startedAt: now, finishedAt: now } }
      : { running: { startedAt: now } },
  });
  return {
    phase: 'Running',
    startTime: now,
    conditions: [
      'PodReadyToStartContainers',
      'Initialized',
      'PodScheduled',
      'ContainersReady',
      'Ready',
    ].map(condition),
    ...(ips.length > 0 ? { podIP: ips[0], podIPs: ips.map(a => ({ ip: a })) } : {}),
    containerStatuses: (pod.spec?.containers ?? []).map(c => containerStatus(c, false)),
    ...(pod.spec?.initContainers?.length
      ? { initContainerStatuses: pod.spec.initContainers.map(c => containerStatus(c, true)) }
      : {}),
  };
}

const MERGE_PATCH = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

/** Starts the stand-in and resolves once its Node exists and its pod watch has listed. */
export async function startKubelet(opts: KubeletOptions): Promise<Kubelet> {
  const nodeName = opts.nodeName ?? DEFAULT_NODE_NAME;
  const bridge = opts.bridge ?? DEFAULT_BRIDGE;
  const cniVersion = opts.cniVersion ?? '1.0.0';
  const cniPath = opts.cniPath ?? [PODLEASE_CNI_DIR, SYSTEM_CNI_DIR];
  sweepStaleDirs(WORK_DIR_PREFIX, cleanUpAfterCrash);
  const workDir = mkdtempSync(path.join(os.tmpdir(), WORK_DIR_PREFIX));
  claimDir(workDir);
  const logPath = path.join(workDir, 'kubelet.log');
  const ipam =
    typeof opts.ipam === 'function'
      ? opts.ipam(workDir)
      : (opts.ipam ?? hostLocalIpam(path.join(workDir, 'host-local')));
  const bridgePlugin = opts.conflistPath === undefined ? findPlugin(cniPath, 'bridge') : '';
  const ipForwardBefore = readFileSync(IP_FORWARD, 'utf8').trim();
  writeFileSync(path.join(workDir, STATE_IP_FORWARD), ipForwardBefore);
  writeFileSync(path.join(workDir, STATE_BRIDGE), bridge);

  const kc = new k8s.KubeConfig();
  kc.loadFromFile(opts.kubeconfigPath);
  const core = kc.makeApiClient(k8s.CoreV1Api);

  const running = new Map<string, RunningPod>(); // by uid
  const failed = new Set<string>(); // uids whose ADD failed (not retried)
  const failures: CniFailure[] = [];
  const queues = new Map<string, Promise<void>>(); // per-uid work chain
  let stopped = false;

  const log = (line: string): void => {
    appendFileSync(logPath, `${new Date().toISOString()} ${line}\n`);
  };

  const netconf = (pod: k8s.V1Pod, prevResult?: CniResult): Record<string, unknown> => ({
    cniVersion,
    name: 'podlease-e2e',
    type: 'bridge',
    bridge,
    isGateway: true,
    isDefaultGateway: false,
    ipMasq: false,
    hairpinMode: false,
    ipam,
    ...(opts.passPodAnnotations
      ? {
          runtimeConfig: {
            'io.kubernetes.cri.pod-annotations': pod.metadata?.annotations ?? {},
          },
        }
      : {}),
    ...(prevResult ? { prevResult } : {}),
  });

  const readConflist = (): Conflist => {
    const list = JSON.parse(readFileSync(opts.conflistPath ?? '', 'utf8')) as Conflist;
    if (!Array.isArray(list.plugins) || list.plugins.length === 0) {
      throw new CniError(`${opts.conflistPath ?? ''}: no plugins`);
    }
    return list;
  };
  const capabilityArgs = (pod: k8s.V1Pod): Record<string, unknown> =>
    opts.passPodAnnotations
      ? { [POD_ANNOTATIONS_CAPABILITY]: pod.metadata?.annotations ?? {} }
      : {};

  /** CNI ADD of the pod's network: the built-in netconf, or each plugin of the conflist. */
  const addNetwork = async (inv: Omit<CniInvocation, 'netconf'>): Promise<CniResult> => {
    const env = opts.cniEnv ?? {};
    if (opts.conflistPath === undefined) {
      const out = await runCni(bridgePlugin, { ...inv, netconf: netconf(inv.pod) }, cniPath, env);
      return JSON.parse(out) as CniResult;
    }
    const list = readConflist();
    let result: CniResult | undefined;
    for (const plugin of list.plugins ?? []) {
      const conf = conflistNetconf(list, plugin, capabilityArgs(inv.pod), result);
      const out = await runCni(
        findPlugin(cniPath, String(plugin.type)),
        { ...inv, netconf: conf },
        cniPath,
        env,
      );
      result = JSON.parse(out) as CniResult;
    }
    return result ?? {};
  };

  /** CNI DEL of the pod's network (a conflist's plugins in reverse, each with the last result). */
  const delNetwork = async (
    inv: Omit<CniInvocation, 'netconf' | 'command'>,
    prevResult: CniResult | undefined,
  ): Promise<void> => {
    const env = opts.cniEnv ?? {};
    const del = { ...inv, command: 'DEL' as const };
    if (opts.conflistPath === undefined) {
      await runCni(bridgePlugin, { ...del, netconf: netconf(inv.pod, prevResult) }, cniPath, env);
      return;
    }
    const list = readConflist();
    for (const plugin of [...(list.plugins ?? [])].reverse()) {
      const conf = conflistNetconf(list, plugin, capabilityArgs(inv.pod), prevResult);
      await runCni(
        findPlugin(cniPath, String(plugin.type)),
        { ...del, netconf: conf },
        cniPath,
        env,
      );
    }
  };

  const recordEvent = async (pod: k8s.V1Pod, reason: string, message: string): Promise<void> => {
    const namespace = pod.metadata?.namespace ?? 'default';
    const now = new Date();
    await core
      .createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${pod.metadata?.name ?? 'pod'}.`, namespace },
          involvedObject: {
            kind: 'Pod',
            apiVersion: 'v1',
            namespace,
            name: pod.metadata?.name,
            uid: pod.metadata?.uid,
          },
          reason,
          message: message.slice(0, 1000),
          type: 'Warning',
          source: { component: 'podlease-e2e-kubelet', host: nodeName },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      })
      .catch((err: unknown) => {
        log(`event for ${podKey(pod)} failed: ${String(err)}`);
      });
  };

  const bind = async (pod: k8s.V1Pod): Promise<void> => {
    const name = pod.metadata?.name ?? '';
    const namespace = pod.metadata?.namespace ?? '';
    await core.createNamespacedPodBinding({
      name,
      namespace,
      body: {
        metadata: { name, namespace, uid: pod.metadata?.uid },
        target: { apiVersion: 'v1', kind: 'Node', name: nodeName },
      },
    });
    log(`bound ${namespace}/${name} to ${nodeName}`);
  };

  const setUp = async (pod: k8s.V1Pod): Promise<void> => {
    const uid = pod.metadata?.uid ?? '';
    const key = podKey(pod);
    if (!pod.spec?.nodeName) await bind(pod);
    const containerId = `plt${uid.replace(/-/g, '')}`;
    let entry: RunningPod;
    if (pod.spec?.hostNetwork) {
      entry = { ...identity(pod), netns: undefined, containerId, ips: [], cniResult: undefined };
    } else {
      const netns = `${NETNS_PREFIX}${uid.replace(/-/g, '').slice(0, 12)}`;
      appendFileSync(path.join(workDir, STATE_NETNS), `${netns}\n`);
      await ip(['netns', 'add', netns]);
      await ip(['-n', netns, 'link', 'set', 'lo', 'up']);
      const inv = { command: 'ADD' as const, containerId, netnsPath: `/run/netns/${netns}`, pod };
      let result: CniResult;
      try {
        result = await addNetwork(inv);
      } catch (err) {
        // what a runtime does after a failed ADD: DEL, then drop the sandbox
        await delNetwork(inv, undefined).catch(() => undefined);
        await deleteNetns(netns).catch(() => undefined);
        throw err;
      }
      const ips = (result.ips ?? []).map(a => a.address.split('/')[0] ?? a.address);
      entry = { ...identity(pod), netns, containerId, ips, cniResult: result };
    }
    running.set(uid, entry);
    await core.patchNamespacedPodStatus(
      {
        name: entry.name,
        namespace: entry.namespace,
        body: { status: runningStatus(pod, entry.ips) },
      },
      MERGE_PATCH,
    );
    log(`running ${key} netns=${entry.netns ?? '(host)'} ips=${entry.ips.join(',')}`);
  };

  const tearDown = async (uid: string, pod: k8s.V1Pod | undefined): Promise<void> => {
    const entry = running.get(uid);
    if (!entry) return;
    running.delete(uid);
    if (entry.netns) {
      const inv = {
        command: 'DEL' as const,
        containerId: entry.containerId,
        netnsPath: `/run/netns/${entry.netns}`,
        pod: pod ?? { metadata: { namespace: entry.namespace, name: entry.name, uid } },
      };
      try {
        await delNetwork(inv, entry.cniResult);
      } catch (err) {
        failures.push({
          command: 'DEL',
          pod: `${entry.namespace}/${entry.name}`,
          message: String(err),
        });
        log(`CNI DEL ${entry.namespace}/${entry.name} failed: ${String(err)}`);
      }
      await deleteNetns(entry.netns);
    }
    log(`torn down ${entry.namespace}/${entry.name}`);
  };

  const finishDeletion = async (pod: k8s.V1Pod): Promise<void> => {
    const uid = pod.metadata?.uid ?? '';
    await tearDown(uid, pod);
    try {
      await core.deleteNamespacedPod({
        name: pod.metadata?.name ?? '',
        namespace: pod.metadata?.namespace ?? '',
        body: { gracePeriodSeconds: 0, preconditions: { uid } },
      });
      log(`deleted ${podKey(pod)}`);
    } catch (err) {
      if (!isApiStatus(err, 404) && !isApiStatus(err, 409)) throw err;
    }
  };

  const reconcile = async (pod: k8s.V1Pod): Promise<void> => {
    const uid = pod.metadata?.uid ?? '';
    if (pod.spec?.nodeName && pod.spec.nodeName !== nodeName) return;
    if (pod.metadata?.deletionTimestamp) {
      await finishDeletion(pod);
      return;
    }
    if (running.has(uid) || failed.has(uid)) return;
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return;
    try {
      await setUp(pod);
    } catch (err) {
      failed.add(uid);
      const message = err instanceof Error ? err.message : String(err);
      log(`set-up of ${podKey(pod)} failed: ${message}`);
      if (err instanceof CniError) {
        failures.push({ command: 'ADD', pod: podKey(pod), message });
        await recordEvent(pod, 'FailedCreatePodSandBox', message);
      } else {
        throw err;
      }
    }
  };

  const enqueue = (uid: string, work: () => Promise<void>): void => {
    const prev = queues.get(uid) ?? Promise.resolve();
    const next = prev
      .then(work)
      .catch((err: unknown) => {
        log(`error for pod ${uid}: ${err instanceof Error ? err.message : String(err)}`);
      })
      .finally(() => {
        if (queues.get(uid) === next) queues.delete(uid);
      });
    queues.set(uid, next);
  };

  // --- node
  try {
    await core.createNode({
      body: { metadata: { name: nodeName, labels: { 'kubernetes.io/hostname': nodeName } } },
    });
  } catch (err) {
    if (!isApiStatus(err, 409)) throw err;
  }
  const now = new Date().toISOString();
  await core.patchNodeStatus(
    {
      name: nodeName,
      body: {
        status: {
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'KubeletReady',
              message: 'podlease e2e kubelet stand-in',
              lastHeartbeatTime: now,
              lastTransitionTime: now,
            },
          ],
        },
      },
    },
    MERGE_PATCH,
  );

  // --- pod watch
  const informer = opts.namespace
    ? k8s.makeInformer(kc, `/api/v1/namespaces/${opts.namespace}/pods`, () =>
        core.listNamespacedPod({ namespace: opts.namespace ?? '' }),
      )
    : k8s.makeInformer(kc, '/api/v1/pods', () => core.listPodForAllNamespaces());
  const onPod = (pod: k8s.V1Pod): void => {
    if (stopped) return;
    enqueue(pod.metadata?.uid ?? '', () => reconcile(pod));
  };
  informer.on(k8s.ADD, onPod);
  informer.on(k8s.UPDATE, onPod);
  informer.on(k8s.DELETE, (pod: k8s.V1Pod) => {
    if (stopped) return;
    const uid = pod.metadata?.uid ?? '';
    enqueue(uid, () => tearDown(uid, pod));
  });
  informer.on(k8s.ERROR, (err: unknown) => {
    log(`watch error: ${String(err)}`);
    if (stopped) return;
    setTimeout(() => {
      if (stopped) return;
      informer.start().catch((e: unknown) => {
        log(`watch restart failed: ${String(e)}`);
      });
    }, INFORMER_RESTART_MS);
  });
  await informer.start();
  log(
    `started: node ${nodeName}, bridge ${bridge}, ` +
      (opts.conflistPath === undefined
        ? `ipam ${JSON.stringify(ipam)}`
        : `conflist ${opts.conflistPath}`),
  );

  const idle = async (): Promise<void> => {
    while (queues.size > 0) await Promise.allSettled([...queues.values()]);
  };

  return {
    nodeName,
    bridge,
    workDir,
    logPath,
    pods: () => new Map([...running.values()].map(p => [`${p.namespace}/${p.name}`, p])),
    failures: () => [...failures],
    idle,
    async stop() {
      if (stopped) return;
      stopped = true;
      await informer.stop();
      await idle();
      for (const uid of [...running.keys()]) {
        await tearDown(uid, undefined).catch((err: unknown) => {
          log(`teardown on stop failed: ${String(err)}`);
        });
      }
      await ip(['link', 'del', bridge]).catch(() => undefined);
      // The bridge plugin turns on IPv4 forwarding for an isGateway bridge; put it back.
      if (readFileSync(IP_FORWARD, 'utf8').trim() !== ipForwardBefore) {
        writeFileSync(IP_FORWARD, ipForwardBefore);
      }
      if (process.env.PODLEASE_E2E_KEEP !== '1') rmSync(workDir, { recursive: true, force: true });
    },
  };
}

function identity(pod: k8s.V1Pod): { namespace: string; name: string; uid: string } {
  return {
    namespace: pod.metadata?.namespace ?? '',
    name: pod.metadata?.name ?? '',
    uid: pod.metadata?.uid ?? '',
  };
}
