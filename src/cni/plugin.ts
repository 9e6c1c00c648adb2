/**
 * The podlease CNI IPAM plugin: one function from (environment, stdin) to (stdout, stderr, exit
 * code), so tests drive every verb in-process (whereabouts `CmdAddWithArgs`). The plugin holds no
 * lease state: ADD and CHECK read the pod's annotations, DEL and GC have nothing to undo (the
 * controller releases leases), STATUS probes the API server. The only file it writes is its TLS
 * session cache beside the kubeconfig (tls-session.ts).
 */
import { OWNED_ANNOTATIONS } from '../pool/annotations.js';
import {
  decodeStdin,
  parseCommand,
  parseEnv,
  parseNetConf,
  podRefFromArgs,
  POD_ANNOTATIONS_CAPABILITY,
  rawVersion,
  type CniCommand,
  type IpamConfig,
  type NetConf,
  type CniPodRef,
} from './args.js';
import { CNI_ERROR, CniError, describeError } from './errors.js';
import type { ApiConnection } from './kubeconfig.js';
import { canonicalAddress, checkUid, podAddresses, type PodAddress, type PodInfo } from './pod.js';
import { formatResult, prevResultAddresses } from './result.js';
import {
  isSupportedVersion,
  LATEST_VERSION,
  requireVerbAllowed,
  SUPPORTED_VERSIONS,
} from './version.js';

export interface Writer {
  write(chunk: string): unknown;
}

export interface PluginIO {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdin: string;
  readonly stdout: Writer;
  readonly stderr: Writer;
}

/** Seams for tests; the defaults talk to the API server named by `ipam.kubeconfig`. */
export interface PluginDeps {
  /** Fetch one pod's UID and annotations. */
  readonly lookupPod?: (pod: CniPodRef, ipam: IpamConfig) => Promise<PodInfo>;
  /** STATUS: resolve when the API server is reachable, throw CniError 50 when not. */
  readonly probeApiServer?: (ipam: IpamConfig) => Promise<void>;
}

/** Deadline for the pod GET on ADD/CHECK (connect + TLS + answer). */
export const LOOKUP_TIMEOUT_MS = 5_000;
/** Deadline for the STATUS probe. */
export const PROBE_TIMEOUT_MS = 2_000;

const requireKubeconfig = (ipam: IpamConfig): string => {
  if (ipam.kubeconfig !== undefined) return ipam.kubeconfig;
  throw new CniError(
    CNI_ERROR.invalidConfig,
    'ipam.kubeconfig is not set and the runtime passed no pod annotations',
    `set "ipam": {"type": "podlease", "kubeconfig": "/etc/cni/net.d/podlease/kubeconfig"}, or declare the ` +
      `"${POD_ANNOTATIONS_CAPABILITY}" capability in the conflist`,
  );
};

/** The kubeconfig's connection, with the TLS session cache beside the kubeconfig. */
const connectionFor = async (path: string): Promise<ApiConnection> => {
  const [{ loadKubeconfig }, { sessionDirFor }] = await Promise.all([
    import('./kubeconfig.js'),
    import('./tls-session.js'),
  ]);
  return { ...(await loadKubeconfig(path)), sessionDir: sessionDirFor(path) };
};

const defaultLookup = async (pod: CniPodRef, ipam: IpamConfig): Promise<PodInfo> => {
  const path = requireKubeconfig(ipam);
  const [conn, { getPod }] = await Promise.all([connectionFor(path), import('./apiserver.js')]);
  return getPod(conn, pod, LOOKUP_TIMEOUT_MS);
};

const defaultProbe = async (ipam: IpamConfig): Promise<void> => {
  if (ipam.kubeconfig === undefined) return;
  const [conn, { probe }] = await Promise.all([
    connectionFor(ipam.kubeconfig),
    import('./apiserver.js'),
  ]);
  await probe(conn, PROBE_TIMEOUT_MS);
};

interface Ctx {
  readonly io: PluginIO;
  readonly deps: PluginDeps;
}

/** The pod's addresses: runtime-passed annotations when they carry the address, else one GET. */
const resolveAddresses = async (ctx: Ctx, conf: NetConf, pod: CniPodRef): Promise<PodAddress[]> => {
  const passed = conf.podAnnotations;
  let info: PodInfo;
  if (
    passed !== undefined &&
    (passed[OWNED_ANNOTATIONS.ip] !== undefined || conf.ipam.kubeconfig === undefined)
  ) {
    info = { uid: undefined, annotations: passed };
  } else {
    info = await (ctx.deps.lookupPod ?? defaultLookup)(pod, conf.ipam);
    checkUid(pod, info);
  }
  return podAddresses(pod, info.annotations);
};

const cmdAdd = async (ctx: Ctx, conf: NetConf, pod: CniPodRef): Promise<void> => {
  const addresses = await resolveAddresses(ctx, conf, pod);
  const result = formatResult(
    { addresses, routes: conf.ipam.routes, dns: conf.ipam.dns },
    conf.cniVersion,
  );
  ctx.io.stdout.write(`${JSON.stringify(result)}\n`);
};

const cmdCheck = async (ctx: Ctx, conf: NetConf, pod: CniPodRef): Promise<void> => {
  requireVerbAllowed('CHECK', conf.cniVersion, '0.4.0');
  const previous = prevResultAddresses(conf.prevResult);
  if (previous === undefined) {
    throw new CniError(
      CNI_ERROR.invalidConfig,
      'CHECK needs "prevResult" with the addresses ADD returned',
      'the runtime passes it from its cache',
    );
  }
  const had = new Set(previous.map(canonicalAddress));
  const want = (await resolveAddresses(ctx, conf, pod)).map(a => a.address);
  const missing = want.filter(a => !had.has(a));
  if (missing.length > 0) {
    throw new CniError(
      CNI_ERROR.checkMismatch,
      `pod ${pod.namespace}/${pod.name} now carries ${want.join(', ')}, but the container was set up with ${previous.join(', ') || 'no address'}`,
      'the podlease annotations changed after ADD; delete the pod so it is set up again',
    );
  }
};

const cmdVersion = (io: PluginIO): void => {
  const cniVersion = io.stdin.trim() === '' ? LATEST_VERSION : rawVersion(decodeStdin(io.stdin));
  io.stdout.write(`${JSON.stringify({ cniVersion, supportedVersions: SUPPORTED_VERSIONS })}\n`);
};

const log = (io: PluginIO, command: string, text: string): void => {
  io.stderr.write(`podlease-cni ${command}: ${text}\n`);
};

/** DEL: the plugin holds nothing, so it succeeds always — even on a config it cannot read. */
const cmdDel = (io: PluginIO): number => {
  try {
    parseEnv(io.env, 'DEL');
    parseNetConf(decodeStdin(io.stdin));
  } catch (e) {
    log(io, 'DEL', `ignoring (nothing to release locally): ${describeError(e)}`);
  }
  return 0;
};

const dispatch = async (ctx: Ctx, command: CniCommand, conf: NetConf): Promise<void> => {
  switch (command) {
    case 'ADD':
      return cmdAdd(ctx, conf, podRefFromArgs(parseEnv(ctx.io.env, command).args));
    case 'CHECK':
      return cmdCheck(ctx, conf, podRefFromArgs(parseEnv(ctx.io.env, command).args));
    case 'STATUS':
      requireVerbAllowed('STATUS', conf.cniVersion, '1.1.0');
      return (ctx.deps.probeApiServer ?? defaultProbe)(conf.ipam);
    case 'GC':
      requireVerbAllowed('GC', conf.cniVersion, '1.1.0');
      return;
    case 'DEL':
    case 'VERSION':
      throw new Error(`unreachable: ${command} is handled before dispatch`);
  }
};

const toCniError = (e: unknown): CniError =>
  e instanceof CniError
    ? e
    : new CniError(CNI_ERROR.internal, 'podlease failed unexpectedly', describeError(e));

/**
 * Runs one CNI invocation. Writes the result or the CNI error JSON to `stdout`, logs to
 * `stderr`, and returns the exit code (0 on success, 1 on error).
 */
export const runPlugin = async (io: PluginIO, deps: PluginDeps = {}): Promise<number> => {
  let command = 'unknown';
  let errorVersion: string = LATEST_VERSION;
  try {
    const verb = parseCommand(io.env);
    command = verb;
    if (verb === 'VERSION') {
      cmdVersion(io);
      return 0;
    }
    if (verb === 'DEL') return cmdDel(io);
    parseEnv(io.env, verb);
    const raw = decodeStdin(io.stdin);
    const asked = rawVersion(raw);
    if (isSupportedVersion(asked)) errorVersion = asked;
    await dispatch({ io, deps }, verb, parseNetConf(raw));
    return 0;
  } catch (e) {
    const err = toCniError(e);
    io.stdout.write(`${JSON.stringify(err.toResult(errorVersion))}\n`);
    log(io, command, `error ${err.code}: ${err.message}`);
    return 1;
  }
};
