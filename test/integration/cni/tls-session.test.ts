/**
 * TLS session resumption across invocations of the built executable (src/cni/tls-session.ts):
 * the second ADD resumes the first one's session, a corrupted cache file costs a full handshake
 * and is replaced, and a server whose certificate is not from the kubeconfig's CA is refused even
 * with a valid cached session offered to it.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadKubeconfig } from '../../../src/cni/kubeconfig.js';
import { sessionCache, sessionDirFor } from '../../../src/cni/tls-session.js';
import {
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

const TOKEN = 'podlease-cni-session-token';
const ANNOTATIONS = {
  'podlease.io/ip': '10.250.7.10',
  'podlease.io/cidr': '10.250.7.0/24',
  'podlease.io/gateway': '10.250.7.1',
};

const skipReason = hasOpenssl() ? '' : 'openssl is not installed (apt-get install openssl)';
if (skipReason !== '' && !requireAll) {
  console.warn(`\n!!! SKIPPING the CNI TLS session suite: ${skipReason}\n`);
}

describe.skipIf(skipReason !== '' && !requireAll)('TLS session cache of dist/cni/podlease', () => {
  let pki: Pki;
  let api: FakeApiServer;
  let kubeconfig = '';
  let sessions = '';

  beforeAll(async () => {
    if (skipReason !== '') throw new Error(`PODLEASE_REQUIRE_ALL=1 but ${skipReason}`);
    ensureBinary();
    pki = makePki();
    api = await startFakeApiServer(pki, TOKEN);
    api.pods.set('team-a/web-0', podObject('team-a', 'web-0', 'uid-1', ANNOTATIONS));
    kubeconfig = writeKubeconfig(pki.dir, 'kc', {
      server: api.url,
      cluster: { 'certificate-authority': pki.caFile },
      user: { token: TOKEN },
    });
    sessions = sessionDirFor(kubeconfig);
  });

  afterAll(async () => {
    await api.close();
    rmSync(pki.dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    rmSync(sessions, { recursive: true, force: true });
  });

  /** One ADD through the API server: whether its TLS connection resumed a session. */
  const add = async (kc = kubeconfig): Promise<boolean> => {
    const before = api.requests.length;
    const r = await runPluginBinary('ADD', netconf(kc));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const seen = api.requests.slice(before);
    expect(seen).toHaveLength(1);
    return seen[0]?.resumed ?? false;
  };

  const sessionFile = (): string => {
    const files = readdirSync(sessions);
    expect(files).toHaveLength(1);
    return join(sessions, files[0] ?? '');
  };

  it('keeps the first session (0600, in a 0700 directory) and resumes it on the next ADDs', async () => {
    expect(await add()).toBe(false);
    const file = sessionFile();
    expect(statSync(sessions).mode & 0o777).toBe(0o700);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const saved = readFileSync(file);
    expect(await add()).toBe(true);
    expect(await add()).toBe(true);
    // A resumed handshake rewrites nothing.
    expect(readFileSync(file)).toEqual(saved);
  });

  it('makes a full handshake over a corrupted cache file, then replaces it', async () => {
    expect(await add()).toBe(false);
    const file = sessionFile();
    writeFileSync(file, 'this is not a TLS session');
    expect(await add()).toBe(false);
    expect(readFileSync(file).toString()).not.toBe('this is not a TLS session');
    expect(await add()).toBe(true);
  });

  it('makes a full handshake when the server no longer knows the session', async () => {
    expect(await add()).toBe(false);
    const session = readFileSync(sessionFile());
    // The same server, restarted: new ticket keys, so the cached session is stale.
    await api.close();
    const port = api.port;
    api = await startFakeApiServer(pki, TOKEN, port);
    api.pods.set('team-a/web-0', podObject('team-a', 'web-0', 'uid-1', ANNOTATIONS));
    expect(await add()).toBe(false);
    expect(readFileSync(sessionFile())).not.toEqual(session);
    expect(await add()).toBe(true);
  });

  describe('a server with a certificate from another CA', () => {
    let impostor: Server;
    let impostorKubeconfig = '';
    let handshakes = 0;

    beforeAll(async () => {
      const ssl = (...args: string[]): void => {
        execFileSync('openssl', args, { cwd: pki.dir, stdio: 'pipe' });
      };
      writeFileSync(join(pki.dir, 'impostor.ext'), 'subjectAltName=IP:127.0.0.1\n');
      ssl(
        'req',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        'impostor.key',
        '-out',
        'impostor.csr',
        '-subj',
        '/CN=kube-apiserver',
      );
      ssl(
        'x509',
        '-req',
        '-in',
        'impostor.csr',
        '-CA',
        'other-ca.crt',
        '-CAkey',
        'other-ca.key',
        '-set_serial',
        '7',
        '-out',
        'impostor.crt',
        '-days',
        '2',
        '-extfile',
        'impostor.ext',
      );
      impostor = createServer(
        {
          key: readFileSync(join(pki.dir, 'impostor.key')),
          cert: readFileSync(join(pki.dir, 'impostor.crt')),
        },
        (_req, res) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(podObject('team-a', 'web-0', 'uid-1', ANNOTATIONS)));
        },
      );
      impostor.on('secureConnection', () => {
        handshakes++;
      });
      await new Promise<void>(resolve => {
        impostor.listen(0, '127.0.0.1', resolve);
      });
      impostorKubeconfig = writeKubeconfig(pki.dir, 'kc-impostor', {
        server: `https://127.0.0.1:${(impostor.address() as AddressInfo).port}`,
        cluster: { 'certificate-authority': pki.caFile },
        user: { token: TOKEN },
      });
    });

    afterAll(async () => {
      impostor.closeAllConnections();
      await new Promise(resolve => impostor.close(resolve));
    });

    it('is refused (7) although a valid session of the real server is cached for it', async () => {
      expect(await add()).toBe(false);
      const valid = readFileSync(sessionFile());
      // Offer the real server's session to the impostor: cached under the impostor's key.
      sessionCache(sessions, await loadKubeconfig(impostorKubeconfig))?.save(valid);
      expect(readdirSync(sessions)).toHaveLength(2);
      const r = await runPluginBinary('ADD', netconf(impostorKubeconfig));
      expect(r.code).toBe(1);
      const answer = r.json as { code: number; msg: string };
      expect(answer.code).toBe(7);
      expect(answer.msg).toContain('presented a certificate the kubeconfig does not trust');
      expect(handshakes).toBe(0);
      // Nothing from the impostor was kept.
      const kept = sessionCache(sessions, await loadKubeconfig(impostorKubeconfig))?.load();
      expect(kept).toEqual(valid);
    });
  });
});
