/**
 * podlease under a real CNI runtime: `cnitool` (libcni) runs a conflist of `bridge` + podlease IPAM
 * against two network namespaces — one pod read from the loopback API server stand-in, one from
 * runtime-passed pod annotations (CAP_ARGS, the `io.kubernetes.cri.pod-annotations` capability) —
 * then CHECK, STATUS (up and down), GC and DEL twice. cnitool comes from
 * PODLEASE_CNITOOL, /var/cache/podlease/bin, or PATH; when absent and Go is present, this suite
 * `go install`s it into /var/cache/podlease/bin (idempotent, outside the repo).
 *
 * Network safety as in bridge.test.ts: bridge `plcni1`, no uplink, no masquerading, the one
 * route handed out leads to TEST-NET-2 and is never used.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addresses,
  bridgeSkipReason,
  linkExists,
  ping,
  setUpBridgeSuite,
  TEST_NET,
  type BridgeSuite,
} from './netns.js';
import {
  ensureBinary,
  requireAll,
  spawnBounded,
  writeKubeconfig,
  type Spawned,
} from './support.js';

const CACHE_BIN = '/var/cache/podlease/bin';
const CNITOOL_MODULE = 'github.com/containernetworking/cni/cnitool@latest';
const BRIDGE = 'plcni1';
const CIDR = '10.250.8.0/24';
const GATEWAY = '10.250.8.1';
const TOKEN = 'cnitool-test-token';
const suffix = randomBytes(3).toString('hex');
const NS_API = `plcni-api-${suffix}`;
const NS_CAP = `plcni-cap-${suffix}`;
const ANN = 'io.kubernetes.cri.pod-annotations';

const onPath = (cmd: string): string | undefined => {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const found = r.stdout.trim();
  return r.status === 0 && found !== '' ? found : undefined;
};

const findCnitool = (): string | undefined => {
  const candidates = [process.env.PODLEASE_CNITOOL, join(CACHE_BIN, 'cnitool')];
  return candidates.find(c => c !== undefined && c !== '' && existsSync(c)) ?? onPath('cnitool');
};

const findGo = (): string | undefined =>
  onPath('go') ?? (existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);

/** cnitool, building it into the cache with `go install` when needed. */
const obtainCnitool = (): string => {
  const found = findCnitool();
  if (found !== undefined) return found;
  const go = findGo();
  if (go === undefined) throw new Error('neither cnitool nor go is available');
  mkdirSync(CACHE_BIN, { recursive: true });
  const r = spawnSync(go, ['install', CNITOOL_MODULE], {
    env: { ...process.env, GOBIN: CACHE_BIN, GOFLAGS: '-modcacherw' },
    encoding: 'utf8',
    timeout: 540_000,
  });
  if (r.status !== 0) throw new Error(`go install ${CNITOOL_MODULE} failed: ${r.stderr}`);
  return join(CACHE_BIN, 'cnitool');
};

const skipReason =
  bridgeSkipReason() ||
  (findCnitool() !== undefined || findGo() !== undefined
    ? ''
    : 'cnitool is not installed and Go is missing to build it');
if (skipReason !== '' && !requireAll) {
  console.warn(`\n!!! SKIPPING the cnitool suite: ${skipReason}\n`);
}

describe.skipIf(skipReason !== '' && !requireAll)('cnitool runs bridge + podlease', () => {
  let cnitool: string;
  let suite: BridgeSuite;
  let confDir: string;

  const tool = (args: string[], env: Record<string, string> = {}): Promise<Spawned> =>
    spawnBounded(
      cnitool,
      args,
      { CNI_PATH: suite.cniPath, NETCONFPATH: confDir, CNI_IFNAME: 'eth0', ...env },
      '',
      30_000,
    );

  const podArgs = (name: string, uid: string): string =>
    `IgnoreUnknown=1;K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=${name};K8S_POD_UID=${uid}`;

  beforeAll(async () => {
    if (skipReason !== '') throw new Error(`PODLEASE_REQUIRE_ALL=1 but ${skipReason}`);
    cnitool = obtainCnitool();
    ensureBinary();
    suite = await setUpBridgeSuite({
      bridge: BRIDGE,
      token: TOKEN,
      cidr: CIDR,
      gateway: GATEWAY,
      pods: [{ name: 'api-pod', uid: 'uid-api', ip: '10.250.8.10' }],
      namespaces: [NS_API, NS_CAP],
    });
    const { pki, kubeconfig } = suite;
    confDir = mkdtempSync(join(tmpdir(), 'podlease-cni-conf-'));
    // A port nobody listens on, for the STATUS-down network.
    const probe = createServer();
    await new Promise<void>(resolve => {
      probe.listen(0, '127.0.0.1', resolve);
    });
    const closedPort = (probe.address() as AddressInfo).port;
    await new Promise<void>(resolve => {
      probe.close(() => {
        resolve();
      });
    });
    const downKubeconfig = writeKubeconfig(pki.dir, 'kubeconfig-down', {
      server: `https://127.0.0.1:${closedPort}`,
      cluster: { 'certificate-authority': pki.caFile },
      user: { token: TOKEN },
    });
    const write = (name: string, conflist: unknown): void => {
      writeFileSync(join(confDir, `${name}.conflist`), JSON.stringify(conflist, null, 2));
    };
    write('10-plcni-tool', {
      cniVersion: '1.0.0',
      name: 'plcni-tool',
      plugins: [
        {
          type: 'bridge',
          bridge: BRIDGE,
          isGateway: true,
          ipMasq: false,
          capabilities: { [ANN]: true },
          ipam: { type: 'podlease', kubeconfig, routes: [{ dst: TEST_NET, gw: GATEWAY }] },
        },
      ],
    });
    const statusNet = (name: string, kc: string): unknown => ({
      cniVersion: '1.1.0',
      name,
      plugins: [{ type: 'podlease', ipam: { type: 'podlease', kubeconfig: kc } }],
    });
    write('20-plcni-status', statusNet('plcni-status', kubeconfig));
    write('30-plcni-down', statusNet('plcni-down', downKubeconfig));
  }, 600_000);

  afterAll(async () => {
    // cnitool's own DEL is under test; this only makes sure nothing is left behind.
    await suite.close();
    rmSync(confDir, { recursive: true, force: true });
  });

  it('add: reads the pod from the API server', async () => {
    const r = await tool(['add', 'plcni-tool', `/var/run/netns/${NS_API}`], {
      CNI_ARGS: podArgs('api-pod', 'uid-api'),
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({
      cniVersion: '1.0.0',
      ips: [{ address: '10.250.8.10/24', gateway: GATEWAY }],
    });
    expect(addresses(NS_API, 'eth0')).toEqual(['10.250.8.10/24']);
  });

  it('add: takes the pod annotations the runtime passes (no API call)', async () => {
    const before = suite.api.requests.length;
    const r = await tool(['add', 'plcni-tool', `/var/run/netns/${NS_CAP}`], {
      CNI_ARGS: podArgs('cap-pod', 'uid-cap'),
      CAP_ARGS: JSON.stringify({
        [ANN]: {
          'podlease.io/ip': '10.250.8.11',
          'podlease.io/cidr': CIDR,
          'podlease.io/gateway': GATEWAY,
        },
      }),
    });
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ ips: [{ address: '10.250.8.11/24', gateway: GATEWAY }] });
    expect(suite.api.requests.length).toBe(before);
    expect(addresses(NS_CAP, 'eth0')).toEqual(['10.250.8.11/24']);
  });

  it('the two namespaces reach each other over the bridge', () => {
    expect(ping(NS_API, '10.250.8.11')).toBe(true);
    expect(ping(NS_CAP, '10.250.8.10')).toBe(true);
  });

  it('check succeeds', async () => {
    const r = await tool(['check', 'plcni-tool', `/var/run/netns/${NS_API}`], {
      CNI_ARGS: podArgs('api-pod', 'uid-api'),
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('status succeeds while the API server answers, fails when it cannot be reached', async () => {
    const up = await tool(['status', 'plcni-status', `/var/run/netns/${NS_API}`]);
    expect(up.code).toBe(0);
    const down = await tool(['status', 'plcni-down', `/var/run/netns/${NS_API}`]);
    expect(down.code).not.toBe(0);
    expect(`${down.stdout}${down.stderr}`).toContain('cannot be reached');
  });

  it('gc succeeds', async () => {
    const r = await tool(['gc', 'plcni-status', `/var/run/netns/${NS_API}`]);
    expect(r.code).toBe(0);
  });

  it('del succeeds twice for each namespace', async () => {
    for (const [ns, args] of [
      [NS_API, podArgs('api-pod', 'uid-api')],
      [NS_CAP, podArgs('cap-pod', 'uid-cap')],
    ] as const) {
      for (let i = 0; i < 2; i++) {
        const r = await tool(['del', 'plcni-tool', `/var/run/netns/${ns}`], { CNI_ARGS: args });
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
      }
      expect(linkExists(ns, 'eth0')).toBe(false);
    }
  });
});
