/**
 * The built executable dist/cni/podlease, spawned as a runtime would, against a loopback HTTPS
 * stand-in for the API server (throw-away CA from openssl).
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BINARY,
  ensureBinary,
  hasOpenssl,
  makePki,
  netconf,
  podObject,
  requireAll,
  runPluginBinary,
  startFakeApiServer,
  writeKubeconfig,
  type FakeApiServer,
  type Pki,
} from './support.js';

const TOKEN = 'podlease-cni-test-token';
const ANNOTATIONS = {
  'podlease.io/pool': 'test',
  'podlease.io/ip': '10.250.7.10',
  'podlease.io/cidr': '10.250.7.0/24',
  'podlease.io/gateway': '10.250.7.1',
  'podlease.io/lease': 'test/01JD3ZK0000000000000000000',
};
const RESULT = {
  cniVersion: '1.1.0',
  ips: [{ address: '10.250.7.10/24', gateway: '10.250.7.1' }],
};

const skipReason = hasOpenssl() ? '' : 'openssl is not installed (apt-get install openssl)';
if (skipReason !== '' && !requireAll) {
  console.warn(`\n!!! SKIPPING the CNI binary suite: ${skipReason}\n`);
}

describe.skipIf(skipReason !== '' && !requireAll)('dist/cni/podlease (spawned)', () => {
  let pki: Pki;
  let api: FakeApiServer;
  const kc: Record<string, string> = {};

  beforeAll(() => {
    if (skipReason !== '') throw new Error(`PODLEASE_REQUIRE_ALL=1 but ${skipReason}`);
    ensureBinary();
    pki = makePki();
    return startFakeApiServer(pki, TOKEN).then(server => {
      api = server;
      api.pods.set('team-a/web-0', podObject('team-a', 'web-0', 'uid-1', ANNOTATIONS));
      api.pods.set('team-a/bare', podObject('team-a', 'bare', 'uid-2', { other: 'x' }));
      writeFileSync(join(pki.dir, 'token'), `${TOKEN}\n`);
      kc.tokenCaFile = writeKubeconfig(pki.dir, 'kc-token', {
        server: api.url,
        cluster: { 'certificate-authority': 'ca.crt' },
        user: { token: TOKEN },
      });
      kc.certData = writeKubeconfig(pki.dir, 'kc-certdata', {
        server: `${api.url}/`,
        cluster: { 'certificate-authority-data': pki.ca.toString('base64') },
        user: {
          'client-certificate-data': pki.clientCert.toString('base64'),
          'client-key-data': pki.clientKey.toString('base64'),
        },
      });
      kc.certFiles = writeKubeconfig(pki.dir, 'kc-certfiles', {
        server: api.url.replace('127.0.0.1', 'localhost'),
        cluster: { 'certificate-authority': pki.caFile },
        user: { 'client-certificate': pki.clientCertFile, 'client-key': pki.clientKeyFile },
      });
      kc.tokenFile = writeKubeconfig(pki.dir, 'kc-tokenfile', {
        server: api.url,
        cluster: { 'certificate-authority': pki.caFile },
        user: { tokenFile: join(pki.dir, 'token') },
      });
      kc.json = join(pki.dir, 'kc.json');
      writeFileSync(
        kc.json,
        JSON.stringify({
          'current-context': 'j',
          clusters: [
            { name: 'c', cluster: { server: api.url, 'certificate-authority': 'ca.crt' } },
          ],
          contexts: [{ name: 'j', context: { cluster: 'c', user: 'u' } }],
          users: [{ name: 'u', user: { token: TOKEN } }],
        }),
      );
      kc.insecure = writeKubeconfig(pki.dir, 'kc-insecure', {
        server: api.url,
        cluster: { 'insecure-skip-tls-verify': true },
        user: { token: TOKEN },
      });
      kc.wrongCa = writeKubeconfig(pki.dir, 'kc-wrongca', {
        server: api.url,
        cluster: { 'certificate-authority': pki.otherCaFile },
        user: { token: TOKEN },
      });
      kc.noCreds = writeKubeconfig(pki.dir, 'kc-nocreds', {
        server: api.url,
        cluster: { 'certificate-authority': pki.caFile },
      });
    });
  });

  afterAll(async () => {
    await api.close();
    rmSync(pki.dir, { recursive: true, force: true });
  });

  it('is one executable file', () => {
    const st = statSync(BINARY);
    expect(st.isFile()).toBe(true);
    expect(st.mode & 0o111).not.toBe(0);
  });

  it('answers VERSION', async () => {
    const r = await runPluginBinary('VERSION', { cniVersion: '1.0.0' });
    expect(r.code).toBe(0);
    expect(r.json).toEqual({
      cniVersion: '1.0.0',
      supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
    });
    expect(r.stderr).toBe('');
  });

  it('ADD from runtime-passed annotations needs no API server', async () => {
    const r = await runPluginBinary(
      'ADD',
      netconf('/nonexistent/kubeconfig', {
        cniVersion: '0.3.1',
        runtimeConfig: { 'io.kubernetes.cri.pod-annotations': ANNOTATIONS },
      }),
    );
    expect(r.code).toBe(0);
    expect(r.json).toEqual({
      cniVersion: '0.3.1',
      ips: [{ version: '4', address: '10.250.7.10/24', gateway: '10.250.7.1' }],
    });
    expect(r.stdout).toBe(`${JSON.stringify(r.json)}\n`);
  });

  it.each(['tokenCaFile', 'certData', 'certFiles', 'tokenFile', 'insecure', 'json'])(
    'ADD GETs the pod with kubeconfig %s',
    async which => {
      const before = api.requests.length;
      const r = await runPluginBinary('ADD', netconf(kc[which]));
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.json).toEqual(RESULT);
      const seen = api.requests.slice(before);
      expect(seen).toHaveLength(1);
      expect(seen[0]?.url).toBe('/api/v1/namespaces/team-a/pods/web-0');
      expect(seen[0]?.accept).toContain('as=PartialObjectMetadata');
      if (which === 'certData' || which === 'certFiles') {
        expect(seen[0]?.clientCn).toBe('podlease-cni');
      } else {
        expect(seen[0]?.authorization).toBe(`Bearer ${TOKEN}`);
      }
    },
  );

  it('ADD fails with 102 on a UID mismatch', async () => {
    const r = await runPluginBinary('ADD', netconf(kc.tokenCaFile), {
      CNI_ARGS: 'K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=web-0;K8S_POD_UID=uid-old',
    });
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ cniVersion: '1.1.0', code: 102 });
    expect(r.stderr).toContain('error 102');
  });

  it('ADD fails with 100 for a pod the webhook did not annotate', async () => {
    const r = await runPluginBinary('ADD', netconf(kc.tokenCaFile), {
      CNI_ARGS: 'K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=bare',
    });
    expect(r.code).toBe(1);
    const err = r.json as { code: number; msg: string; details: string };
    expect(err.code).toBe(100);
    expect(err.msg).toContain('the podlease webhook did not admit it');
    expect(err.details).toContain('MutatingWebhookConfiguration');
  });

  it('ADD fails with 104 for a pod that does not exist', async () => {
    const r = await runPluginBinary('ADD', netconf(kc.tokenCaFile), {
      CNI_ARGS: 'K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=gone',
    });
    expect(r.json).toMatchObject({ code: 104, details: 'pods "gone" not found' });
  });

  it('ADD fails with 105 naming RBAC when the credentials are refused', async () => {
    const r = await runPluginBinary('ADD', netconf(kc.noCreds));
    expect(r.code).toBe(1);
    const err = r.json as { code: number; msg: string; details: string };
    expect(err.code).toBe(105);
    expect(err.msg).toContain('answered 401');
    expect(err.details).toContain('ClusterRole');
  });

  it('ADD fails with 11 (try again later) when the API server answers 503', async () => {
    api.forceStatus = 503;
    try {
      const r = await runPluginBinary('ADD', netconf(kc.tokenCaFile));
      expect(r.json).toMatchObject({ code: 11 });
    } finally {
      api.forceStatus = undefined;
    }
  });

  it('ADD fails with 7 when the server certificate is not from the kubeconfig’s CA', async () => {
    const r = await runPluginBinary('ADD', netconf(kc.wrongCa));
    expect(r.json).toMatchObject({ code: 7 });
    expect((r.json as { msg: string }).msg).toContain('certificate the kubeconfig does not trust');
  });

  it.each([
    [
      'certificate-authority',
      { 'certificate-authority-data': Buffer.from('not a cert').toString('base64') },
      {},
    ],
    [
      'client-certificate/client-key',
      {},
      {
        'client-certificate-data': Buffer.from('not a cert').toString('base64'),
        'client-key-data': Buffer.from('not a key').toString('base64'),
      },
    ],
  ])('ADD fails with 7 naming the kubeconfig’s unusable %s', async (what, cluster, user) => {
    const path = writeKubeconfig(pki.dir, `kc-unusable-${what.length}`, {
      server: api.url,
      cluster: { 'certificate-authority': pki.caFile, ...cluster },
      user: { token: TOKEN, ...user },
    });
    const r = await runPluginBinary('ADD', netconf(path));
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({
      code: 7,
      msg: `the kubeconfig's ${what} for the API server ${api.url} is not usable`,
    });
  });

  it('ADD fails with 5 (I/O failure) naming the path when the kubeconfig file is missing', async () => {
    const r = await runPluginBinary('ADD', netconf('/nonexistent/kubeconfig'));
    expect(r.json).toMatchObject({
      code: 5,
      msg: 'cannot read the kubeconfig /nonexistent/kubeconfig',
    });
  });

  it('CHECK agrees with the pod; DEL succeeds twice; GC succeeds', async () => {
    const check = await runPluginBinary('CHECK', netconf(kc.tokenCaFile, { prevResult: RESULT }));
    expect(check).toMatchObject({ code: 0, stdout: '', stderr: '' });
    for (let i = 0; i < 2; i++) {
      const del = await runPluginBinary('DEL', netconf(kc.tokenCaFile));
      expect(del).toMatchObject({ code: 0, stdout: '', stderr: '' });
    }
    const gc = await runPluginBinary(
      'GC',
      netconf(kc.tokenCaFile, { 'cni.dev/valid-attachments': [] }),
    );
    expect(gc).toMatchObject({ code: 0, stdout: '' });
  });

  it('STATUS succeeds while the API server answers', async () => {
    const r = await runPluginBinary('STATUS', netconf(kc.tokenCaFile));
    expect(r).toMatchObject({ code: 0, stdout: '' });
  });

  it('fails with 4 / 6 through the binary too', async () => {
    const noEnv = await runPluginBinary('ADD', netconf(kc.tokenCaFile), { CNI_IFNAME: '' });
    expect(noEnv.json).toEqual({
      cniVersion: '1.1.0',
      code: 4,
      msg: 'CNI_IFNAME is not set (required for ADD)',
    });
    const badJson = await runPluginBinary('ADD', '{oops');
    expect(badJson.json).toMatchObject({ code: 6 });
    expect(badJson.code).toBe(1);
  });

  describe('API server unreachable', () => {
    let closedPort: number;
    let blackhole: Server;
    let blackholePort: number;
    const sockets: Socket[] = [];

    beforeAll(async () => {
      // A port nobody listens on: take one, then close it.
      const probe = createServer();
      await new Promise<void>(resolve => {
        probe.listen(0, '127.0.0.1', resolve);
      });
      closedPort = (probe.address() as AddressInfo).port;
      await new Promise<void>(resolve =>
        probe.close(() => {
          resolve();
        }),
      );
      // A server that accepts TCP and never answers (as a hung API server would).
      blackhole = createServer(s => {
        sockets.push(s);
      });
      await new Promise<void>(resolve => {
        blackhole.listen(0, '127.0.0.1', resolve);
      });
      blackholePort = (blackhole.address() as AddressInfo).port;
    });

    afterAll(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>(resolve =>
        blackhole.close(() => {
          resolve();
        }),
      );
    });

    const kcFor = (port: number): string =>
      writeKubeconfig(pki.dir, `kc-${port}`, {
        server: `https://127.0.0.1:${port}`,
        cluster: { 'certificate-authority': pki.caFile },
        user: { token: TOKEN },
      });

    it('STATUS answers 50 when the port is closed', async () => {
      const r = await runPluginBinary('STATUS', netconf(kcFor(closedPort)));
      expect(r.code).toBe(1);
      expect(r.json).toMatchObject({
        cniVersion: '1.1.0',
        code: 50,
        msg: `the API server https://127.0.0.1:${closedPort} named in the kubeconfig cannot be reached`,
      });
      expect((r.json as { details: string }).details).toContain('ECONNREFUSED');
    });

    it('STATUS answers 50 within about 2 s when the server hangs', async () => {
      const r = await runPluginBinary('STATUS', netconf(kcFor(blackholePort)));
      expect(r.json).toMatchObject({ code: 50 });
      expect((r.json as { details: string }).details).toContain('no answer within 2000 ms');
      expect(r.ms).toBeGreaterThan(1_900);
      expect(r.ms).toBeLessThan(4_000);
    });

    it('ADD answers 11 (try again later) when the port is closed', async () => {
      const r = await runPluginBinary('ADD', netconf(kcFor(closedPort)));
      expect(r.json).toMatchObject({ code: 11 });
      expect((r.json as { msg: string }).msg).toContain('try again later');
    });

    it('DEL still succeeds', async () => {
      const r = await runPluginBinary('DEL', netconf(kcFor(closedPort)));
      expect(r).toMatchObject({ code: 0, stdout: '' });
    });
  });
});
