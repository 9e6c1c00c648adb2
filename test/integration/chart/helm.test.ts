// charts/podlease through the real helm binary: `helm lint`, `helm template` under each TLS mode
// and each Redis mode (what each renders, checked field by field), and values.schema.json refusing
// bad values before anything is rendered, in agreement with the server's own pools validation.
// The API-server side (server-side dry-run, helm install) is test/e2e/chart.test.ts.
import { X509Certificate } from 'node:crypto';

import { beforeAll, describe, expect, it } from 'vitest';

import { commandFlags } from '../../../src/config/config.js';
import { envName } from '../../../src/config/flags.js';
import { parsePoolsText, toPoolSet } from '../../../src/pool/pools-file.js';
import {
  CHART_DIR,
  helm,
  helmMissing,
  type Manifest,
  MODES,
  parseManifests,
  SOME_CA_BUNDLE,
  template,
  valuesFile,
} from '../../helpers/chart.js';

const missing = helmMissing();
const requireAll = process.env.PODLEASE_REQUIRE_ALL === '1';
if (missing !== '' && !requireAll) console.warn(`\n!! SKIPPING chart tests: ${missing}\n`);

/** Flags other work adds to `podlease serve` in parallel; the chart sets them already. */
const FLAGS_BEING_ADDED = [
  'reuse-cooldown',
  'reconcile-interval',
  'leader-elect-namespace',
  'leader-elect-lease',
  'leader-lease-duration',
  'rebuild-settle',
];

type Obj = Record<string, unknown>;
const at = (o: unknown, ...path: (string | number)[]): unknown =>
  path.reduce<unknown>((v, k) => (v === undefined || v === null ? undefined : (v as Obj)[k]), o);

const rendered = async (values: unknown, namespace = 'podlease'): Promise<Manifest[]> => {
  const r = await template(values, { namespace });
  if (r.code !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return parseManifests(r.stdout);
};
const find = (objs: Manifest[], kind: string, suffix = ''): Manifest => {
  const found = objs.find(o => o.kind === kind && o.metadata.name.endsWith(suffix));
  if (found === undefined)
    throw new Error(`no ${kind} *${suffix} in ${objs.map(o => o.kind).join(', ')}`);
  return found;
};
const kinds = (objs: Manifest[]): string[] => objs.map(o => o.kind).sort();
const container = (deploy: Manifest): Obj =>
  at(deploy, 'spec', 'template', 'spec', 'containers', 0) as Obj;
const env = (deploy: Manifest): Map<string, Obj> =>
  new Map(((container(deploy).env ?? []) as Obj[]).map(e => [String(e.name), e]));

// Under PODLEASE_REQUIRE_ALL=1 a missing helm fails the suite instead of skipping it.
describe.skipIf(missing !== '' && !requireAll)('charts/podlease with helm', () => {
  beforeAll(() => {
    if (missing !== '') throw new Error(`PODLEASE_REQUIRE_ALL=1 but ${missing}`);
  });

  it('passes helm lint --strict, with the defaults and under every mode', async () => {
    const lint = await helm(['lint', '--strict', CHART_DIR]);
    expect(lint.code, lint.stdout + lint.stderr).toBe(0);
    for (const mode of MODES) {
      const file = valuesFile(mode.values);
      const r = await helm(['lint', '--strict', CHART_DIR, '-f', file.path]);
      file.remove();
      expect(r.code, `${mode.name}: ${r.stdout}${r.stderr}`).toBe(0);
    }
  });

  it('renders the webhook configurations the design asks for', async () => {
    const objs = await rendered({ webhook: { excludeNamespaces: ['legacy'] } }, 'ipam');
    const mutating = at(find(objs, 'MutatingWebhookConfiguration'), 'webhooks', 0) as Obj;
    expect(mutating).toMatchObject({
      name: 'mutate.podlease.io',
      sideEffects: 'NoneOnDryRun',
      timeoutSeconds: 5,
      reinvocationPolicy: 'Never',
      failurePolicy: 'Fail',
      rules: [
        { operations: ['CREATE'], resources: ['pods'], apiGroups: [''], apiVersions: ['v1'] },
      ],
      clientConfig: {
        service: { name: 'podlease', namespace: 'ipam', path: '/mutate', port: 443 },
      },
    });
    expect(at(mutating, 'namespaceSelector', 'matchExpressions', 0)).toEqual({
      key: 'kubernetes.io/metadata.name',
      operator: 'NotIn',
      values: ['kube-system', 'ipam', 'legacy'],
    });
    expect(at(mutating, 'matchConditions', 0, 'expression')).toContain('hostNetwork');
    const guard = at(find(objs, 'ValidatingWebhookConfiguration'), 'webhooks', 0) as Obj;
    expect(guard).toMatchObject({
      name: 'validate.podlease.io',
      sideEffects: 'None',
      rules: [{ operations: ['UPDATE'], resources: ['pods'] }],
      clientConfig: { service: { path: '/validate' } },
    });
    const ignore = await rendered({ webhook: { failurePolicy: 'Ignore' } });
    expect(at(find(ignore, 'MutatingWebhookConfiguration'), 'webhooks', 0, 'failurePolicy')).toBe(
      'Ignore',
    );
  });

  it('renders a Deployment that survives rollouts and drains, runs non-root and read-only', async () => {
    const objs = await rendered({});
    const deploy = find(objs, 'Deployment');
    expect(at(deploy, 'spec', 'replicas')).toBe(2);
    expect(at(deploy, 'spec', 'strategy', 'rollingUpdate')).toEqual({
      maxUnavailable: 0,
      maxSurge: 1,
    });
    const pod = at(deploy, 'spec', 'template', 'spec') as Obj;
    expect(at(pod, 'affinity', 'podAntiAffinity')).toBeDefined();
    expect(at(pod, 'securityContext', 'runAsNonRoot')).toBe(true);
    const c = container(deploy);
    expect(c.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
      expect(at(c, probe, 'httpGet', 'port'), probe).toBe('metrics');
    }
    expect(at(c, 'readinessProbe', 'httpGet', 'path')).toBe('/readyz');
    expect(at(c, 'lifecycle', 'preStop', 'sleep', 'seconds')).toBe(5);
    expect(at(c, 'resources', 'requests')).toBeDefined();
    expect(Number(at(pod, 'terminationGracePeriodSeconds'))).toBeGreaterThan(5 + 5 + 10);
    expect(at(find(objs, 'PodDisruptionBudget'), 'spec', 'minAvailable')).toBe(1);
    const vars = env(deploy);
    expect(at(vars.get('POD_NAMESPACE'), 'valueFrom', 'fieldRef', 'fieldPath')).toBe(
      'metadata.namespace',
    );
    expect(at(vars.get('POD_NAME'), 'valueFrom', 'fieldRef', 'fieldPath')).toBe('metadata.name');
    expect(vars.get('PODLEASE_SERVICE_ACCOUNT')?.value).toBe(
      'system:serviceaccount:podlease:podlease',
    );
    // every PODLEASE_* variable is a flag of `podlease serve` (docs/design.md §6)
    const known = new Set(
      [...Object.keys(commandFlags('serve')), ...FLAGS_BEING_ADDED].map(envName),
    );
    const unknown = [...vars.keys()].filter(n => n.startsWith('PODLEASE_') && !known.has(n));
    expect(unknown).toEqual([]);
  });

  it('renders least-privilege RBAC: read pods, StatefulSets and namespaces, write Events and its Lease', async () => {
    const objs = await rendered({});
    const roles = objs.filter(o => o.kind === 'ClusterRole' || o.kind === 'Role');
    const rules = (o: Manifest): Obj[] => (o.rules ?? []) as Obj[];
    const verbs = new Set(roles.flatMap(r => rules(r).flatMap(x => x.verbs as string[])));
    expect([...verbs].sort()).toEqual(['create', 'get', 'list', 'patch', 'update', 'watch']);
    const cni = find(objs, 'ClusterRole', '-cni');
    expect(rules(cni)).toEqual([{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }]);
    const role = find(objs, 'Role');
    expect(rules(role)).toEqual([
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        verbs: ['get', 'create', 'update'],
      },
    ]);
    for (const r of roles) {
      for (const rule of rules(r)) expect(rule.resources, JSON.stringify(rule)).not.toContain('*');
    }
  });

  it('renders the pools into a file the server reads as the values say', async () => {
    const pools = [
      { name: 'blue', cidr: '10.30.0.0/24', gateway: '10.30.0.1', default: true },
      { name: 'v6', cidr: 'fd00:30::/64', ranges: ['fd00:30::10-fd00:30::ff'], default: true },
    ];
    const cm = find(await rendered({ pools }), 'ConfigMap', '-pools');
    const text = String(at(cm, 'data', 'pools.yaml'));
    const set = parsePoolsText(text, 'pools.yaml');
    expect([...set.pools.keys()]).toEqual(['blue', 'v6']);
    expect(set.defaults[6]?.name).toBe('v6');
  });

  describe('TLS', () => {
    it('generated: a CA and a serving certificate for the Service, the same CA in caBundle', async () => {
      const objs = await rendered({}, 'ipam');
      const secret = find(objs, 'Secret', '-tls');
      expect(secret.type).toBe('kubernetes.io/tls');
      const pem = (k: string): string =>
        Buffer.from(String(at(secret, 'data', k)), 'base64').toString();
      const ca = new X509Certificate(pem('ca.crt'));
      const cert = new X509Certificate(pem('tls.crt'));
      expect(cert.verify(ca.publicKey)).toBe(true);
      expect(cert.subjectAltName).toContain('DNS:podlease.ipam.svc');
      expect(cert.subjectAltName).toContain('DNS:podlease.ipam.svc.cluster.local');
      for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
        expect(at(find(objs, kind), 'webhooks', 0, 'clientConfig', 'caBundle')).toBe(
          at(secret, 'data', 'ca.crt'),
        );
      }
    });

    it('certManager: a Certificate, a self-signed Issuer unless one is named, and CA injection', async () => {
      const objs = await rendered({ tls: { mode: 'certManager' } }, 'ipam');
      expect(objs.filter(o => o.kind === 'Secret').map(o => o.metadata.name)).toEqual([
        'podlease-redis',
      ]);
      const certificate = find(objs, 'Certificate');
      expect(at(certificate, 'spec', 'dnsNames')).toContain('podlease.ipam.svc');
      expect(at(certificate, 'spec', 'issuerRef', 'kind')).toBe('Issuer');
      expect(find(objs, 'Issuer').spec).toEqual({ selfSigned: {} });
      const mutating = find(objs, 'MutatingWebhookConfiguration');
      expect(at(mutating, 'metadata', 'annotations', 'cert-manager.io/inject-ca-from')).toBe(
        'ipam/podlease-tls',
      );
      expect(at(mutating, 'webhooks', 0, 'clientConfig', 'caBundle')).toBeUndefined();
      const named = await rendered({
        tls: {
          mode: 'certManager',
          certManager: { issuerRef: { name: 'corp', kind: 'ClusterIssuer' } },
        },
      });
      expect(named.some(o => o.kind === 'Issuer')).toBe(false);
      expect(at(find(named, 'Certificate'), 'spec', 'issuerRef')).toEqual({
        name: 'corp',
        kind: 'ClusterIssuer',
        group: 'cert-manager.io',
      });
    });

    it('existingSecret: mounts it, takes caBundle from the values, and says what is missing', async () => {
      const objs = await rendered({
        tls: { mode: 'existingSecret', existingSecret: 'corp-tls', caBundle: SOME_CA_BUNDLE },
      });
      expect(objs.filter(o => o.kind === 'Secret').map(o => o.metadata.name)).toEqual([
        'podlease-redis',
      ]);
      const volumes = at(find(objs, 'Deployment'), 'spec', 'template', 'spec', 'volumes') as Obj[];
      expect(volumes).toContainEqual({ name: 'tls', secret: { secretName: 'corp-tls' } });
      expect(
        at(find(objs, 'MutatingWebhookConfiguration'), 'webhooks', 0, 'clientConfig', 'caBundle'),
      ).toBe(SOME_CA_BUNDLE);
      const r = await template({ tls: { mode: 'existingSecret', existingSecret: 'corp-tls' } });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('tls.mode existingSecret: set tls.caBundle');
    });
  });

  describe('Redis', () => {
    it('embedded: a StatefulSet with AOF on a PVC, noeviction, a password, and a NetworkPolicy', async () => {
      const objs = await rendered({});
      const sts = find(objs, 'StatefulSet', '-redis');
      const args = (at(sts, 'spec', 'template', 'spec', 'containers', 0, 'args') as string[]).join(
        ' ',
      );
      expect(args).toContain('--appendonly yes');
      expect(args).toContain('--maxmemory-policy noeviction');
      expect(args).toContain('--requirepass $(REDIS_PASSWORD)');
      expect(
        at(sts, 'spec', 'volumeClaimTemplates', 0, 'spec', 'resources', 'requests', 'storage'),
      ).toBe('1Gi');
      const secret = find(objs, 'Secret', '-redis');
      const url = Buffer.from(String(at(secret, 'data', 'redis-url')), 'base64').toString();
      const password = Buffer.from(String(at(secret, 'data', 'password')), 'base64').toString();
      expect(url).toBe(`redis://:${password}@podlease-redis.podlease.svc:6379`);
      expect(password).toHaveLength(32);
      expect(
        at(env(find(objs, 'Deployment')).get('REDIS_URL'), 'valueFrom', 'secretKeyRef'),
      ).toEqual({
        name: 'podlease-redis',
        key: 'redis-url',
      });
      const policy = find(objs, 'NetworkPolicy');
      expect(
        at(policy, 'spec', 'ingress', 0, 'from', 0, 'podSelector', 'matchLabels'),
      ).toMatchObject({
        'app.kubernetes.io/component': 'server',
      });
      const off = await rendered({ networkPolicy: { enabled: false } });
      expect(kinds(off)).not.toContain('NetworkPolicy');
    });

    it('external, sentinel and cluster: no Redis of its own, the address in the environment', async () => {
      const external = await rendered({
        redis: { mode: 'external', url: 'rediss://r.example:6380' },
      });
      expect(kinds(external)).not.toContain('StatefulSet');
      expect(kinds(external)).not.toContain('NetworkPolicy');
      const url = at(find(external, 'Secret', '-redis'), 'data', 'redis-url');
      expect(Buffer.from(String(url), 'base64').toString()).toBe('rediss://r.example:6380');
      const fromSecret = await rendered({
        redis: { mode: 'external', existingSecret: 'corp-redis' },
      });
      expect(
        at(
          env(find(fromSecret, 'Deployment')).get('REDIS_URL'),
          'valueFrom',
          'secretKeyRef',
          'name',
        ),
      ).toBe('corp-redis');
      const sentinel = env(find(await rendered(MODES[6]!.values), 'Deployment'));
      expect(sentinel.get('PODLEASE_REDIS_SENTINELS')?.value).toBe('s-0.s:26379,s-1.s:26379');
      expect(sentinel.get('PODLEASE_REDIS_SENTINEL_MASTER')?.value).toBe('podlease');
      const cluster = env(find(await rendered(MODES[7]!.values), 'Deployment'));
      expect(cluster.get('PODLEASE_REDIS_CLUSTER')?.value).toBe('c-0.c:6379,c-1.c:6379');
    });
  });

  it('renders the CNI DaemonSet: host network, projected rotated token, host paths, conflist', async () => {
    const objs = await rendered({ cni: { conflist: { enabled: true } } });
    const ds = find(objs, 'DaemonSet', '-cni');
    const pod = at(ds, 'spec', 'template', 'spec') as Obj;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.automountServiceAccountToken).toBe(false);
    const volumes = pod.volumes as Obj[];
    expect(volumes.find(v => v.name === 'token')).toMatchObject({
      projected: {
        sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3600 } }, {}],
      },
    });
    expect(volumes.find(v => v.name === 'cni-bin')).toMatchObject({
      hostPath: { path: '/opt/cni/bin' },
    });
    const c = at(pod, 'containers', 0) as Obj;
    expect(c.command).toEqual(['node', '/app/dist/bin/podlease-cni-install.js']);
    const conflist = JSON.parse(
      String(at(find(objs, 'ConfigMap', '-cni'), 'data', 'conflist.json')),
    ) as Obj;
    expect(at(conflist, 'plugins', 0, 'ipam', 'type')).toBe('podlease');
  });

  it('renders NOTES that tell how to check the install', async () => {
    const r = await helm(['install', 'podlease', CHART_DIR, '-n', 'ipam', '--dry-run=client']);
    expect(r.code, r.stderr).toBe(0);
    const notes = r.stdout.slice(r.stdout.indexOf('NOTES:'));
    expect(notes).toContain('kubectl -n ipam rollout status deployment/podlease');
    expect(notes).toContain('podlease pools');
    expect(notes).toContain('podlease check');
    expect(notes).toContain('failurePolicy is Fail');
  });

  describe('values.schema.json', () => {
    const refused: readonly { name: string; values: unknown; says: string }[] = [
      {
        name: 'a malformed cidr',
        values: { pools: [{ name: 'a', cidr: '10.0.0.0/33' }] },
        says: '/pools/0/cidr',
      },
      {
        name: 'a cidr without prefix',
        values: { pools: [{ name: 'a', cidr: '10.0.0.0' }] },
        says: '/pools/0/cidr',
      },
      {
        name: 'a pool name that is not a DNS label',
        values: { pools: [{ name: 'A_b', cidr: '10.0.0.0/24' }] },
        says: '/pools/0/name',
      },
      {
        name: 'an unknown pool field',
        values: { pools: [{ name: 'a', cidr: '10.0.0.0/24', gatway: '10.0.0.1' }] },
        says: 'gatway',
      },
      {
        name: 'a bad range',
        values: { pools: [{ name: 'a', cidr: '10.0.0.0/24', ranges: ['10.0.0.1-'] }] },
        says: '/pools/0/ranges/0',
      },
      {
        name: 'a bad gateway',
        values: { pools: [{ name: 'a', cidr: '10.0.0.0/24', gateway: 'gw' }] },
        says: '/pools/0/gateway',
      },
      { name: 'no pools', values: { pools: [] }, says: '/pools' },
      { name: 'an unknown TLS mode', values: { tls: { mode: 'selfSigned' } }, says: '/tls/mode' },
      {
        name: 'existingSecret without its name',
        values: { tls: { mode: 'existingSecret' } },
        says: '/tls/existingSecret',
      },
      { name: 'an unknown Redis mode', values: { redis: { mode: 'memory' } }, says: '/redis/mode' },
      {
        name: 'external Redis without an address',
        values: { redis: { mode: 'external' } },
        says: '/redis',
      },
      {
        name: 'sentinel without sentinels',
        values: { redis: { mode: 'sentinel', sentinelMaster: 'm' } },
        says: '/redis/sentinels',
      },
      {
        name: 'a sentinel that is not host:port',
        values: { redis: { mode: 'sentinel', sentinels: ['s1'], sentinelMaster: 'm' } },
        says: '/redis/sentinels/0',
      },
      { name: 'cluster without nodes', values: { redis: { mode: 'cluster' } }, says: '/redis' },
      {
        name: 'a Redis URL that is not redis://',
        values: { redis: { mode: 'external', url: 'http://r' } },
        says: '/redis/url',
      },
      {
        name: 'an unknown failurePolicy',
        values: { webhook: { failurePolicy: 'Retry' } },
        says: '/webhook/failurePolicy',
      },
      { name: 'zero replicas', values: { replicaCount: 0 }, says: '/replicaCount' },
      { name: 'a misspelt top-level value', values: { replicas: 3 }, says: 'replicas' },
      { name: 'a bad duration', values: { serve: { leaseTtl: 'soon' } }, says: '/serve/leaseTtl' },
    ];

    it.each(refused)('refuses $name before rendering anything', async ({ values, says }) => {
      const r = await template(values);
      expect(r.code).not.toBe(0);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain("values don't meet the specifications of the schema");
      expect(r.stderr).toContain(says);
    });

    it('agrees with the server on the pools: the same structure refused, the semantics left to it', async () => {
      for (const { values } of refused.filter(c => at(c.values, 'pools') !== undefined)) {
        expect(() => toPoolSet(values), JSON.stringify(values)).toThrow();
      }
      // structurally fine, semantically not: helm renders it, podlease serve refuses it
      const overlap = {
        pools: [
          { name: 'a', cidr: '10.0.0.0/24' },
          { name: 'b', cidr: '10.0.0.0/25' },
        ],
      };
      expect((await template(overlap)).code).toBe(0);
      expect(() => toPoolSet(overlap)).toThrow(/overlap pool "a"/);
    });
  });

  it.each(MODES)('renders under $name', async ({ values }) => {
    const objs = await rendered(values);
    expect(kinds(objs)).toEqual(
      expect.arrayContaining([
        'Deployment',
        'Service',
        'MutatingWebhookConfiguration',
        'ValidatingWebhookConfiguration',
        'DaemonSet',
        'ConfigMap',
        'ServiceAccount',
      ]),
    );
    for (const o of objs) {
      expect(o.metadata.name.length, `${o.kind} ${o.metadata.name}`).toBeLessThanOrEqual(63);
      expect(at(o, 'metadata', 'labels', 'app.kubernetes.io/instance')).toBe('podlease');
    }
  });
});
