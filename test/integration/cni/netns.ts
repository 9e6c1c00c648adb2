/**
 * Network-namespace plumbing for the real-plugin suites (root only). Everything created here is
 * named `plcni*`, lives on a bridge the suite creates with no uplink, and is removed in afterAll.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BINARY,
  hasOpenssl,
  makePki,
  podObject,
  startFakeApiServer,
  writeKubeconfig,
  type FakeApiServer,
  type Pki,
} from './support.js';

export const BRIDGE_PLUGIN = '/usr/lib/cni/bridge';
/** TEST-NET-2: the one route the suites hand out leads here, and nothing is ever sent to it. */
export const TEST_NET = '198.51.100.0/24';
const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';

const works = (cmd: string, args: string[]): boolean => {
  const r = spawnSync(cmd, args, { stdio: 'ignore', timeout: 10_000 });
  return r.status === 0;
};

/** Why the netns suites cannot run here, or '' when they can. */
export const netnsSkipReason = (): string => {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'needs root (creates network namespaces and a bridge)';
  if (!existsSync(BRIDGE_PLUGIN)) {
    return `${BRIDGE_PLUGIN} is missing (apt-get install containernetworking-plugins)`;
  }
  if (!works('ip', ['-V'])) return 'the ip command is missing (apt-get install iproute2)';
  if (!works('ping', ['-V'])) return 'ping is missing (apt-get install iputils-ping)';
  const probe = `plcni-probe-${process.pid}`;
  if (!works('ip', ['netns', 'add', probe])) return 'cannot create a network namespace here';
  works('ip', ['netns', 'del', probe]);
  return '';
};

/** Runs a command (bounded), returns stdout; throws with stderr on failure. */
export const sh = (cmd: string, args: string[]): string =>
  execFileSync(cmd, args, { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'pipe'] });

/** Best-effort cleanup command: never throws. */
export const tryRun = (cmd: string, args: string[]): void => {
  spawnSync(cmd, args, { stdio: 'ignore', timeout: 20_000 });
};

export const addNetns = (name: string): string => {
  tryRun('ip', ['netns', 'del', name]);
  sh('ip', ['netns', 'add', name]);
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return `/var/run/netns/${name}`;
};

export const delNetns = (name: string): void => {
  tryRun('ip', ['netns', 'del', name]);
};

export const delBridge = (name: string): void => {
  if (works('ip', ['link', 'show', name])) tryRun('ip', ['link', 'del', name]);
};

/** A CNI_PATH holding `bridge` and the built `podlease`, as a node's /opt/cni/bin would. */
export const makeCniPath = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'podlease-cni-bin-'));
  symlinkSync(BRIDGE_PLUGIN, join(dir, 'bridge'));
  symlinkSync(BINARY, join(dir, 'podlease'));
  return dir;
};

interface AddrInfo {
  family: string;
  local: string;
  prefixlen: number;
}

/** `ip/prefix` of every global address on `dev` inside netns `ns`. */
export const addresses = (ns: string, dev: string): string[] => {
  const links = JSON.parse(sh('ip', ['-n', ns, '-j', 'addr', 'show', 'dev', dev])) as {
    addr_info: (AddrInfo & { scope: string })[];
  }[];
  return links.flatMap(l =>
    l.addr_info.filter(a => a.scope === 'global').map(a => `${a.local}/${a.prefixlen}`),
  );
};

export const linkExists = (ns: string, dev: string): boolean =>
  works('ip', ['-n', ns, 'link', 'show', 'dev', dev]);

export interface RouteInfo {
  dst: string;
  gateway?: string;
  dev?: string;
}

export const routes = (ns: string): RouteInfo[] =>
  JSON.parse(sh('ip', ['-n', ns, '-j', 'route', 'show'])) as RouteInfo[];

/** ping from inside `ns`: 3 packets, bounded to a few seconds. */
export const ping = (ns: string, target: string): boolean =>
  works('ip', ['netns', 'exec', ns, 'ping', '-c', '3', '-i', '0.2', '-W', '1', '-w', '5', target]);

/**
 * The bridge plugin with isGateway turns on IPv4 forwarding on the host; remember the value so
 * afterAll can put it back (nothing is forwarded off the machine meanwhile: no route leads there).
 */
export const saveIpForward = (): (() => void) => {
  const before = readFileSync(IP_FORWARD, 'utf8').trim();
  return () => {
    if (readFileSync(IP_FORWARD, 'utf8').trim() !== before)
      writeFileSync(IP_FORWARD, `${before}\n`);
  };
};

/** Why the bridge + podlease suites cannot run here, or '' when they can. */
export const bridgeSkipReason = (): string =>
  netnsSkipReason() || (hasOpenssl() ? '' : 'openssl is not installed');

/** A pod of namespace team-a the API server stand-in serves, annotated with its address. */
export interface BridgePod {
  readonly name: string;
  readonly uid: string;
  readonly ip: string;
}

export interface BridgeSuite {
  readonly pki: Pki;
  readonly api: FakeApiServer;
  /** A CNI_PATH holding `bridge` and `podlease`. */
  readonly cniPath: string;
  /** A kubeconfig (in pki.dir) for the stand-in: its CA and the bearer token. */
  readonly kubeconfig: string;
  /** Deletes the namespaces and the bridge, puts ip_forward back, closes the stand-in, removes the dirs. */
  close(): Promise<void>;
}

/**
 * What a bridge + podlease suite stands on: ip_forward saved, the bridge left by an earlier run
 * deleted, a PKI, the API server stand-in (token auth) serving `pods` with the podlease.io/ip, cidr
 * and gateway annotations, fresh network `namespaces`, a CNI_PATH and a kubeconfig. Cleans up
 * after itself when a step fails.
 */
export const setUpBridgeSuite = async (opts: {
  readonly bridge: string;
  readonly token: string;
  readonly cidr: string;
  readonly gateway: string;
  readonly pods: readonly BridgePod[];
  readonly namespaces: readonly string[];
}): Promise<BridgeSuite> => {
  let restoreIpForward = (): void => undefined;
  let api: FakeApiServer | undefined;
  const dirs: string[] = [];
  const close = async (): Promise<void> => {
    for (const ns of opts.namespaces) delNetns(ns);
    delBridge(opts.bridge);
    restoreIpForward();
    await api?.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  };
  try {
    restoreIpForward = saveIpForward();
    delBridge(opts.bridge);
    const pki = makePki();
    dirs.push(pki.dir);
    api = await startFakeApiServer(pki, opts.token);
    for (const pod of opts.pods) {
      api.pods.set(
        `team-a/${pod.name}`,
        podObject('team-a', pod.name, pod.uid, {
          'podlease.io/ip': pod.ip,
          'podlease.io/cidr': opts.cidr,
          'podlease.io/gateway': opts.gateway,
        }),
      );
    }
    for (const ns of opts.namespaces) addNetns(ns);
    const kubeconfig = writeKubeconfig(pki.dir, 'kubeconfig', {
      server: api.url,
      cluster: { 'certificate-authority': pki.caFile },
      user: { token: opts.token },
    });
    const cniPath = makeCniPath();
    dirs.push(cniPath);
    return { pki, api, cniPath, kubeconfig, close };
  } catch (err) {
    await close();
    throw err;
  }
};
