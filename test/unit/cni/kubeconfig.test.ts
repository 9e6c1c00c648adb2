import { describe, expect, it } from 'vitest';
import { CNI_ERROR, CniError } from '../../../src/cni/errors.js';
import { loadKubeconfig, type ReadFile } from '../../../src/cni/kubeconfig.js';

const files = (map: Record<string, string>): ReadFile => {
  return path => {
    const text = map[path];
    if (text === undefined) {
      return Promise.reject(
        Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: 'ENOENT' }),
      );
    }
    return Promise.resolve(Buffer.from(text));
  };
};

const b64 = (s: string): string => Buffer.from(s).toString('base64');

const KC = '/etc/cni/net.d/podlease/kubeconfig';

const yaml = (cluster: string, user: string): string => `apiVersion: v1
kind: Config
current-context: podlease
clusters:
  - name: other
    cluster:
      server: https://10.9.9.9:6443
  - name: local
    cluster:
${cluster}
contexts:
  - name: podlease
    context:
      cluster: local
      user: podlease-cni
users:
  - name: podlease-cni
    user:
${user}
`;

const rejection = async (p: Promise<unknown>): Promise<CniError> => {
  try {
    await p;
  } catch (e) {
    if (e instanceof CniError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
};

describe('loadKubeconfig', () => {
  it('reads inline CA, client certificate and key (base64 -data fields)', async () => {
    const text = yaml(
      `      server: https://127.0.0.1:6443/
      certificate-authority-data: ${b64('CA PEM')}
      tls-server-name: kubernetes`,
      `      client-certificate-data: ${b64('CERT PEM')}
      client-key-data: ${b64('KEY PEM')}`,
    );
    const conn = await loadKubeconfig(KC, files({ [KC]: text }));
    expect(conn.server.href).toBe('https://127.0.0.1:6443/');
    expect(conn.ca?.toString()).toBe('CA PEM');
    expect(conn.cert?.toString()).toBe('CERT PEM');
    expect(conn.key?.toString()).toBe('KEY PEM');
    expect(conn.authorization).toBeUndefined();
    expect(conn.insecureSkipTlsVerify).toBe(false);
    expect(conn.tlsServerName).toBe('kubernetes');
  });

  it('reads file paths relative to the kubeconfig’s directory, and a token', async () => {
    const text = yaml(
      `      server: https://127.0.0.1:6443
      certificate-authority: ca.crt`,
      `      token: abc.def`,
    );
    const conn = await loadKubeconfig(
      KC,
      files({ [KC]: text, '/etc/cni/net.d/podlease/ca.crt': 'CA FILE' }),
    );
    expect(conn.ca?.toString()).toBe('CA FILE');
    expect(conn.authorization).toBe('Bearer abc.def');
  });

  it('reads absolute client certificate paths and a tokenFile (trimmed)', async () => {
    const text = yaml(
      `      server: https://127.0.0.1:6443
      insecure-skip-tls-verify: true`,
      `      tokenFile: /var/run/secrets/token
      client-certificate: /pki/c.crt
      client-key: /pki/c.key`,
    );
    const conn = await loadKubeconfig(
      KC,
      files({
        [KC]: text,
        '/var/run/secrets/token': 'tok\n',
        '/pki/c.crt': 'C',
        '/pki/c.key': 'K',
      }),
    );
    expect(conn.authorization).toBe('Bearer tok');
    expect(conn.insecureSkipTlsVerify).toBe(true);
    expect(conn.cert?.toString()).toBe('C');
    expect(conn.key?.toString()).toBe('K');
  });

  it('reads a JSON kubeconfig with a single context and no current-context', async () => {
    const json = JSON.stringify({
      clusters: [{ name: 'c', cluster: { server: 'https://[::1]:6443' } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      users: [{ name: 'u', user: { username: 'admin', password: 'pw' } }],
    });
    const conn = await loadKubeconfig(KC, files({ [KC]: json }));
    expect(conn.server.hostname).toBe('[::1]');
    expect(conn.authorization).toBe(`Basic ${b64('admin:pw')}`);
  });

  it('reads flow-style YAML that merely looks like JSON', async () => {
    const flow =
      '{clusters: [{name: c, cluster: {server: "https://a:1"}}], ' +
      'contexts: [{name: x, context: {cluster: c}}]}';
    const conn = await loadKubeconfig(KC, files({ [KC]: flow }));
    expect(conn.server.href).toBe('https://a:1/');
    expect(conn.authorization).toBeUndefined();
  });

  it.each([
    ['invalid YAML', { [KC]: 'a: [' }, 'not valid YAML'],
    ['a scalar document', { [KC]: 'just text' }, 'not a YAML mapping'],
    [
      'a missing current context',
      { [KC]: 'current-context: nope\ncontexts: []' },
      'context "nope" is missing',
    ],
    [
      'a cluster without server',
      { [KC]: yaml('      certificate-authority-data: eA==', '      token: t') },
      'no "server"',
    ],
    [
      'a non-http server',
      { [KC]: yaml('      server: unix:///run/k8s.sock', '      token: t') },
      'not an http(s) URL',
    ],
    [
      'exec credentials',
      { [KC]: yaml('      server: https://a:1', '      exec:\n        command: aws') },
      'exec and auth-provider credentials are not supported',
    ],
    [
      'an empty tokenFile',
      { [KC]: yaml('      server: https://a:1', '      tokenFile: /t'), '/t': '\n' },
      'tokenFile /t is empty',
    ],
  ])('fails with 7 on %s', async (_what, map: Record<string, string>, text) => {
    const err = await rejection(loadKubeconfig(KC, files(map)));
    expect(err.code).toBe(CNI_ERROR.invalidConfig);
    expect(err.msg).toBe(`kubeconfig ${KC} is not usable`);
    expect(err.details).toContain(text);
  });

  it.each([
    ['the kubeconfig itself', {}, `cannot read the kubeconfig ${KC}`],
    [
      'a CA file',
      {
        [KC]: yaml(
          '      server: https://a:1\n      certificate-authority: /nope/ca.crt',
          '      token: t',
        ),
      },
      `cannot read certificate-authority /nope/ca.crt named in the kubeconfig ${KC}`,
    ],
    [
      'a relative tokenFile',
      { [KC]: yaml('      server: https://a:1', '      tokenFile: token') },
      `cannot read tokenFile /etc/cni/net.d/podlease/token named in the kubeconfig ${KC}`,
    ],
  ])(
    'fails with 5 (I/O failure) naming the path when %s is missing',
    async (_what, map: Record<string, string>, msg) => {
      const err = await rejection(loadKubeconfig(KC, files(map)));
      expect(err.code).toBe(CNI_ERROR.ioFailure);
      expect(err.msg).toBe(msg);
      expect(err.details).toContain('ENOENT');
    },
  );
});
