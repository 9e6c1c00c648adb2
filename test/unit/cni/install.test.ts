// The CNI installer (src/cni/install.ts) on a temp dir: what it writes, that the plugin reads the
// kubeconfig it writes, and that a run stopped between any two file operations (a kill between
// write and rename included) leaves every destination whole: the old file or the new one.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { InstallError } from '../../../src/cni/errors.js';
import {
  Installer,
  installPaths,
  nodeInstallFs,
  POD_ANNOTATIONS_CAPABILITY,
  toConflist,
  type InstallFs,
} from '../../../src/cni/install.js';
import { loadKubeconfig } from '../../../src/cni/kubeconfig.js';
import { ConfigError } from '../../../src/config/errors.js';
import { loadCniInstallConfig, type InstallConfig } from '../../../src/config/cni-install.js';

const TEMPLATE = {
  cniVersion: '1.0.0',
  name: 'pods',
  plugins: [
    { type: 'bridge', bridge: 'cni0', ipam: { type: 'podlease', routes: [{ dst: '0.0.0.0/0' }] } },
    { type: 'portmap', capabilities: { portMappings: true } },
  ],
};

class Crash extends Error {}

/** nodeInstallFs that throws Crash on operation number `crashAt` (0-based), as a SIGKILL would. */
const crashingFs = (crashAt: number): InstallFs & { ops: number } => {
  const state = { ops: 0 };
  const step = (): void => {
    if (state.ops++ === crashAt) throw new Crash(`crash at operation ${crashAt}`);
  };
  const wrap =
    <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      step();
      return fn(...a);
    };
  return {
    get ops() {
      return state.ops;
    },
    readFile: wrap(nodeInstallFs.readFile),
    writeFileSynced: wrap(nodeInstallFs.writeFileSynced),
    copyFileSynced: wrap(nodeInstallFs.copyFileSynced),
    rename: wrap(nodeInstallFs.rename),
    // a killed process cleans nothing up
    rm: async path => {
      step();
      return nodeInstallFs.rm(path);
    },
    mkdir: wrap(nodeInstallFs.mkdir),
    readdir: wrap(nodeInstallFs.readdir),
    digest: wrap(nodeInstallFs.digest),
  };
};

describe('podlease-cni-install', () => {
  let dir: string;
  let config: InstallConfig;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'podlease-install-'));
    for (const d of ['src', 'bin', 'net.d', 'sa']) mkdirSync(join(dir, d));
    writeFileSync(join(dir, 'src/podlease'), 'new plugin '.repeat(10_000));
    writeFileSync(join(dir, 'sa/token'), 'token-1\n');
    writeFileSync(join(dir, 'sa/ca.crt'), 'CA PEM\n');
    writeFileSync(join(dir, 'conflist.json'), JSON.stringify(TEMPLATE));
    config = {
      pluginSource: join(dir, 'src/podlease'),
      binDir: join(dir, 'bin'),
      confDir: join(dir, 'net.d'),
      // the host's path is the container's here, so the plugin can read what is written
      hostConfDir: join(dir, 'net.d'),
      tokenFile: join(dir, 'sa/token'),
      caFile: join(dir, 'sa/ca.crt'),
      server: 'https://10.96.0.1:443',
      conflist: { template: join(dir, 'conflist.json'), fileName: '10-podlease.conflist' },
    };
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('installs the plugin, token, JSON kubeconfig and conflist, and rewrites nothing unchanged', async () => {
    const installer = new Installer(config);
    const paths = installPaths(config);
    const report = await installer.install();
    expect(report.written).toEqual([paths.plugin, paths.token, paths.kubeconfig, paths.conflist]);
    expect(readFileSync(paths.plugin, 'utf8')).toBe(readFileSync(config.pluginSource, 'utf8'));
    const kubeconfig = JSON.parse(readFileSync(paths.kubeconfig, 'utf8')) as {
      users: { user: { tokenFile: string } }[];
      clusters: { cluster: Record<string, string> }[];
    };
    expect(kubeconfig.users[0]?.user.tokenFile).toBe(join(config.hostConfDir, 'podlease/token'));
    expect(kubeconfig.clusters[0]?.cluster['certificate-authority-data']).toBe(
      Buffer.from('CA PEM\n').toString('base64'),
    );
    const conflist = JSON.parse(readFileSync(paths.conflist!, 'utf8')) as typeof TEMPLATE & {
      plugins: { capabilities?: Record<string, boolean>; ipam?: Record<string, unknown> }[];
    };
    expect(conflist.plugins[0]?.capabilities).toEqual({ [POD_ANNOTATIONS_CAPABILITY]: true });
    expect(conflist.plugins[0]?.ipam).toEqual({
      kubeconfig: join(config.hostConfDir, 'podlease/kubeconfig'),
      type: 'podlease',
      routes: [{ dst: '0.0.0.0/0' }],
    });
    expect(conflist.plugins[1]).toEqual(TEMPLATE.plugins[1]);
    expect((await installer.install()).written).toEqual([]);
  });

  it('writes a kubeconfig the plugin reads, with the current token on every read', async () => {
    const installer = new Installer(config);
    await installer.install();
    const kc = installPaths(config).kubeconfig;
    expect((await loadKubeconfig(kc)).authorization).toBe('Bearer token-1');
    writeFileSync(config.tokenFile, 'token-2\n'); // the kubelet rotated it
    expect(await installer.refresh()).toEqual([installPaths(config).token]);
    const conn = await loadKubeconfig(kc);
    expect(conn.authorization).toBe('Bearer token-2');
    expect(conn.server.href).toBe('https://10.96.0.1/');
    expect(conn.ca?.toString()).toBe('CA PEM\n');
  });

  it('leaves every file whole when stopped between any two operations, and finishes on rerun', async () => {
    // an earlier install, to be replaced
    const old = new Installer({ ...config, server: 'https://old:6443' });
    await old.install();
    const paths = installPaths(config);
    const dests = [paths.plugin, paths.token, paths.kubeconfig, paths.conflist!];
    const before = new Map(dests.map(p => [p, readFileSync(p, 'utf8')]));
    writeFileSync(config.pluginSource, 'newer plugin '.repeat(10_000));
    writeFileSync(config.tokenFile, 'token-3\n');
    const finished = new Installer(config);
    const counting = crashingFs(-1);
    await new Installer(config, counting).install();
    const total = counting.ops;
    // reference: what a complete install leaves
    const after = new Map(dests.map(p => [p, readFileSync(p, 'utf8')]));
    expect(total).toBeGreaterThan(10);
    for (let crashAt = 0; crashAt < total; crashAt++) {
      // back to the old install, then the new one stopped at operation crashAt
      for (const [p, text] of before) writeFileSync(p, text);
      await expect(new Installer(config, crashingFs(crashAt)).install()).rejects.toThrow(
        /crash at operation/,
      );
      for (const p of dests) {
        const text = readFileSync(p, 'utf8');
        expect([before.get(p), after.get(p)], `${p} after a crash at ${crashAt}`).toContain(text);
      }
      await finished.install(); // the restarted DaemonSet pod
      for (const p of dests) expect(readFileSync(p, 'utf8')).toBe(after.get(p));
      for (const d of [config.binDir, config.confDir, join(config.confDir, 'podlease')]) {
        expect(readdirSync(d).filter(n => n.includes('podlease-tmp'))).toEqual([]);
      }
    }
  });

  it('names the input it cannot use', async () => {
    rmSync(config.tokenFile);
    const error = await new Installer(config).install().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InstallError);
    expect((error as InstallError).retryable).toBe(true);
    expect((error as Error).message).toContain(
      `cannot read the service-account token ${config.tokenFile}`,
    );
    expect(() =>
      toConflist(config, '{"name":"x","plugins":[{"type":"bridge"}]}', 't.json'),
    ).toThrow('t.json: no plugin has "ipam": {"type": "podlease"}');
    expect(() => toConflist(config, '{', 't.json')).toThrow('conflist template t.json is not JSON');
    expect(() => toConflist(config, '{"plugins":{}}', 't.json')).toThrow(/needs "cniVersion"/);
    rmSync(config.pluginSource);
    writeFileSync(config.tokenFile, 'x');
    await expect(new Installer(config).install()).rejects.toThrow(/the plugin .* does not exist/);
  });
});

describe('podlease-cni-install flags', () => {
  it('defaults to the chart mounts and the in-cluster API server', () => {
    const c = loadCniInstallConfig(
      [],
      { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' },
      '/app/dist/cni/podlease',
    );
    expect(c.install).toMatchObject({
      pluginSource: '/app/dist/cni/podlease',
      binDir: '/host/cni/bin',
      confDir: '/host/cni/net.d',
      hostConfDir: '/etc/cni/net.d',
      server: 'https://[fd00::1]:6443',
      conflist: undefined,
    });
    expect(c.once).toBe(false);
    expect(c.intervalMs).toBe(10_000);
  });

  it('reads PODLEASE_CNI_<FLAG>, lets the command line win, and lists every problem', () => {
    const c = loadCniInstallConfig(
      ['--once', '--server', 'https://api:6443/', '--conflist', '/t.json'],
      {
        PODLEASE_CNI_SERVER: 'https://ignored',
        PODLEASE_CNI_CA_FILE: '',
        PODLEASE_CNI_INTERVAL: '1m',
      },
      '/p',
    );
    expect(c.install.server).toBe('https://api:6443');
    expect(c.install.caFile).toBeUndefined();
    expect(c.install.conflist).toEqual({ template: '/t.json', fileName: '10-podlease.conflist' });
    expect(c.intervalMs).toBe(60_000);
    expect(c.once).toBe(true);
    let error: unknown;
    try {
      loadCniInstallConfig(
        [],
        { PODLEASE_CNI_INTERVAL: 'soon', PODLEASE_CNI_LOG_LEVEL: 'loud' },
        '/p',
      );
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([
      'interval: "soon" is not a positive duration such as 10s',
      'log-level: "loud" is not one of fatal, error, warn, info, debug, trace, silent',
      'no API server: set --server (PODLEASE_CNI_SERVER) or run in a pod (KUBERNETES_SERVICE_HOST)',
    ]);
  });
});
