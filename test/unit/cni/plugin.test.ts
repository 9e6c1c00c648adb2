import { describe, expect, it } from 'vitest';
import { CNI_ERROR, CniError } from '../../../src/cni/errors.js';
import { SUPPORTED_VERSIONS } from '../../../src/cni/version.js';
import { addNetConf, pod, type FixtureNetConf } from '../../fixtures/cni/loader.js';
import { baseEnv, fakeLookup, noLookup, run } from './helpers.js';

const ANN = 'io.kubernetes.cri.pod-annotations';

const withAnnotations = (
  annotations: Record<string, string>,
  cniVersion = '1.1.0',
): FixtureNetConf => {
  const conf = addNetConf();
  conf.cniVersion = cniVersion;
  conf.runtimeConfig = { [ANN]: annotations };
  return conf;
};

const single = {
  'podlease.io/ip': '10.250.7.10',
  'podlease.io/cidr': '10.250.7.0/24',
  'podlease.io/gateway': '10.250.7.1',
};

const dual = {
  'podlease.io/ip': '10.250.7.10,fd00:250:7::a',
  'podlease.io/cidr': '10.250.7.0/24,fd00:250:7::/64',
  'podlease.io/gateway': '10.250.7.1,fd00:250:7::1',
};

const errorOf = (code: number, cniVersion = '1.1.0') =>
  expect.objectContaining({ cniVersion, code }) as unknown;

describe('VERSION', () => {
  it('answers every supported version, echoing the caller’s cniVersion', async () => {
    const r = await run({ CNI_COMMAND: 'VERSION' }, { cniVersion: '0.4.0' });
    expect(r.code).toBe(0);
    expect(r.json).toEqual({
      cniVersion: '0.4.0',
      supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
    });
    expect(r.stderr).toBe('');
  });

  it('answers with 1.1.0 on empty stdin', async () => {
    const r = await run({ CNI_COMMAND: 'VERSION' }, '');
    expect(r.json).toEqual({ cniVersion: '1.1.0', supportedVersions: [...SUPPORTED_VERSIONS] });
  });

  it('fails with 6 on stdin that is not JSON', async () => {
    const r = await run({ CNI_COMMAND: 'VERSION' }, '{nope');
    expect(r.code).toBe(1);
    expect(r.json).toEqual(errorOf(CNI_ERROR.decodeFailure));
  });
});

describe('ADD with runtime-passed pod annotations', () => {
  const expected: Record<string, unknown> = {
    '0.3.0': {
      cniVersion: '0.3.0',
      ips: [{ version: '4', address: '10.250.7.10/24', gateway: '10.250.7.1' }],
      routes: [{ dst: '198.51.100.0/24' }],
      dns: { nameservers: ['10.250.7.53'], search: ['svc.cluster.local'] },
    },
    '0.3.1': {
      cniVersion: '0.3.1',
      ips: [{ version: '4', address: '10.250.7.10/24', gateway: '10.250.7.1' }],
      routes: [{ dst: '198.51.100.0/24' }],
      dns: { nameservers: ['10.250.7.53'], search: ['svc.cluster.local'] },
    },
    '0.4.0': {
      cniVersion: '0.4.0',
      ips: [{ version: '4', address: '10.250.7.10/24', gateway: '10.250.7.1' }],
      routes: [{ dst: '198.51.100.0/24' }],
      dns: { nameservers: ['10.250.7.53'], search: ['svc.cluster.local'] },
    },
    '1.0.0': {
      cniVersion: '1.0.0',
      ips: [{ address: '10.250.7.10/24', gateway: '10.250.7.1' }],
      routes: [{ dst: '198.51.100.0/24' }],
      dns: { nameservers: ['10.250.7.53'], search: ['svc.cluster.local'] },
    },
    '1.1.0': {
      cniVersion: '1.1.0',
      ips: [{ address: '10.250.7.10/24', gateway: '10.250.7.1' }],
      routes: [{ dst: '198.51.100.0/24' }],
      dns: { nameservers: ['10.250.7.53'], search: ['svc.cluster.local'] },
    },
  };

  it.each(SUPPORTED_VERSIONS)('returns the result in cniVersion %s', async version => {
    const r = await run(baseEnv('ADD'), withAnnotations(single, version), noLookup);
    expect(r.code).toBe(0);
    expect(r.json).toEqual(expected[version]);
    expect(r.stdout.endsWith('}\n')).toBe(true);
    expect(r.stderr).toBe('');
  });

  it('returns one IP per family, IPv4 first, for a dual-stack pod', async () => {
    const r = await run(baseEnv('ADD'), withAnnotations(dual, '0.4.0'), noLookup);
    expect(r.code).toBe(0);
    expect((r.json as { ips: unknown }).ips).toEqual([
      { version: '4', address: '10.250.7.10/24', gateway: '10.250.7.1' },
      { version: '6', address: 'fd00:250:7::a/64', gateway: 'fd00:250:7::1' },
    ]);
  });

  it('matches gateways by family and omits a missing one', async () => {
    const r = await run(
      baseEnv('ADD'),
      withAnnotations({
        'podlease.io/ip': '10.250.7.10,FD00:250:7:0:0:0:0:A',
        'podlease.io/cidr': '10.250.7.0/24,fd00:250:7::/64',
        'podlease.io/gateway': 'fd00:250:7::1',
      }),
      noLookup,
    );
    expect((r.json as { ips: unknown }).ips).toEqual([
      { address: '10.250.7.10/24' },
      { address: 'fd00:250:7::a/64', gateway: 'fd00:250:7::1' },
    ]);
  });

  it('omits routes and dns when the ipam config has none', async () => {
    const conf = withAnnotations(single);
    conf.ipam = { type: 'podlease' };
    const r = await run(baseEnv('ADD'), conf, noLookup);
    expect(r.json).toEqual({
      cniVersion: '1.1.0',
      ips: [{ address: '10.250.7.10/24', gateway: '10.250.7.1' }],
    });
  });

  it('passes 1.1.0 route attributes through, and only dst/gw to older callers', async () => {
    const route = {
      dst: '198.51.100.0/24',
      gw: '10.250.7.254',
      mtu: 1400,
      priority: 5,
      table: 100,
    };
    const conf = withAnnotations(single);
    conf.ipam.routes = [route];
    const r110 = await run(baseEnv('ADD'), conf, noLookup);
    expect((r110.json as { routes: unknown }).routes).toEqual([route]);
    conf.cniVersion = '1.0.0';
    const r100 = await run(baseEnv('ADD'), conf, noLookup);
    expect((r100.json as { routes: unknown }).routes).toEqual([
      { dst: '198.51.100.0/24', gw: '10.250.7.254' },
    ]);
  });
});

describe('ADD through the pod lookup', () => {
  it('looks the pod up by CNI_ARGS with the ipam config and checks the UID', async () => {
    const lookup = fakeLookup();
    const r = await run(baseEnv('ADD'), addNetConf(), lookup.deps);
    expect(r.code).toBe(0);
    expect(r.json).toEqual({
      cniVersion: '1.1.0',
      ips: [{ address: '10.250.7.10/24', gateway: '10.250.7.1' }],
      routes: [{ dst: '198.51.100.0/24' }],
      dns: { nameservers: ['10.250.7.53'], search: ['svc.cluster.local'] },
    });
    expect(lookup.calls).toHaveLength(1);
    expect(lookup.calls[0]?.pod).toEqual({
      namespace: 'team-a',
      name: 'web-0',
      uid: '7f1e9c5a-0d7c-4a7e-9a0b-1c2d3e4f5a6b',
    });
    expect(lookup.calls[0]?.ipam.kubeconfig).toBe('/etc/cni/net.d/podlease/kubeconfig');
  });

  it('falls back to the lookup when the runtime’s annotations lack the address', async () => {
    const lookup = fakeLookup();
    const r = await run(baseEnv('ADD'), withAnnotations({ other: 'x' }), lookup.deps);
    expect(r.code).toBe(0);
    expect(lookup.calls).toHaveLength(1);
  });

  it('accepts a pod when the runtime passes no K8S_POD_UID', async () => {
    const env = { ...baseEnv('ADD'), CNI_ARGS: 'K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=web-0' };
    const r = await run(env, addNetConf(), fakeLookup().deps);
    expect(r.code).toBe(0);
  });

  it('fails with 102 when the pod has another UID', async () => {
    const r = await run(baseEnv('ADD'), addNetConf(), fakeLookup({ uid: 'other-uid' }).deps);
    expect(r.code).toBe(1);
    expect(r.json).toEqual({
      cniVersion: '1.1.0',
      code: 102,
      msg: 'pod team-a/web-0 has UID other-uid, not 7f1e9c5a-0d7c-4a7e-9a0b-1c2d3e4f5a6b as the runtime says',
      details:
        'the pod was deleted and recreated under the same name; the runtime will retry with the new pod',
    });
    expect(r.stderr).toContain('error 102');
  });

  it('fails with 100 naming the webhook when the pod has no podlease.io/ip', async () => {
    const r = await run(
      baseEnv('ADD'),
      addNetConf(),
      fakeLookup({ annotations: { 'podlease.io/pool': 'test' } }).deps,
    );
    expect(r.code).toBe(1);
    const err = r.json as { code: number; msg: string; details: string };
    expect(err.code).toBe(CNI_ERROR.podNotAdmitted);
    expect(err.msg).toBe(
      'pod team-a/web-0 has no podlease.io/ip annotation: the podlease webhook did not admit it',
    );
    expect(err.details).toContain('MutatingWebhookConfiguration');
  });

  it('fails with 106 for a pod marked podlease.io/ignore', async () => {
    const conf = withAnnotations({ 'podlease.io/ignore': 'true' });
    conf.ipam = { type: 'podlease' };
    const r = await run(baseEnv('ADD'), conf, noLookup);
    expect(r.json).toEqual(errorOf(CNI_ERROR.podIgnored));
  });

  it.each([
    [{ 'podlease.io/ip': '10.250.7.10' }, 'podlease.io/cidr is missing'],
    [{ 'podlease.io/ip': '10.250.7.999', 'podlease.io/cidr': '10.250.7.0/24' }, 'not an IP'],
    [{ 'podlease.io/ip': '10.250.8.10', 'podlease.io/cidr': '10.250.7.0/24' }, 'outside'],
    [{ 'podlease.io/ip': '10.250.7.10', 'podlease.io/cidr': '10.250.7.0/33' }, 'not a CIDR'],
    [{ 'podlease.io/ip': '10.250.7.10,10.250.7.11', 'podlease.io/cidr': '10.250.7.0/24' }, 'pair'],
    [
      {
        'podlease.io/ip': '10.250.7.10,10.250.7.11',
        'podlease.io/cidr': '10.250.7.0/24,10.250.7.0/24',
      },
      'two addresses of one family',
    ],
    [
      {
        'podlease.io/ip': '10.250.7.10',
        'podlease.io/cidr': '10.250.7.0/24',
        'podlease.io/gateway': '10.9.9.1',
      },
      'gateway 10.9.9.1 is outside',
    ],
    [
      {
        'podlease.io/ip': '10.250.7.10',
        'podlease.io/cidr': '10.250.7.0/24',
        'podlease.io/gateway': 'x',
      },
      'not an IP address',
    ],
  ])('fails with 101 on malformed annotations %j', async (annotations, text) => {
    const r = await run(baseEnv('ADD'), withAnnotations(annotations), noLookup);
    expect(r.code).toBe(1);
    const err = r.json as { code: number; details: string };
    expect(err.code).toBe(CNI_ERROR.badAnnotation);
    expect(err.details).toContain(text);
  });

  it('passes the lookup’s CniError through (11: API server unreachable)', async () => {
    const r = await run(baseEnv('ADD'), addNetConf(), {
      lookupPod: () =>
        Promise.reject(new CniError(CNI_ERROR.tryAgainLater, 'the API server cannot be reached')),
    });
    expect(r.json).toEqual({
      cniVersion: '1.1.0',
      code: 11,
      msg: 'the API server cannot be reached',
    });
  });

  it('reports an unexpected failure as 999 with its message', async () => {
    const r = await run(baseEnv('ADD'), addNetConf(), {
      lookupPod: () => Promise.reject(new TypeError('boom')),
    });
    expect(r.json).toEqual({
      cniVersion: '1.1.0',
      code: 999,
      msg: 'podlease failed unexpectedly',
      details: 'boom',
    });
  });

  it('fails with 7 when there is neither a kubeconfig nor runtime annotations', async () => {
    const conf = addNetConf();
    conf.ipam = { type: 'podlease' };
    const r = await run(baseEnv('ADD'), conf);
    expect(r.json).toEqual(errorOf(CNI_ERROR.invalidConfig));
    expect((r.json as { msg: string }).msg).toContain('ipam.kubeconfig is not set');
  });
});

describe('ADD errors', () => {
  it('fails with 4 when CNI_COMMAND is missing', async () => {
    const env = baseEnv('ADD');
    delete env.CNI_COMMAND;
    const r = await run(env, addNetConf());
    expect(r.code).toBe(1);
    expect(r.json).toEqual({ cniVersion: '1.1.0', code: 4, msg: 'CNI_COMMAND is not set' });
  });

  it('fails with 4 on an unknown CNI_COMMAND', async () => {
    const r = await run({ ...baseEnv('ADD'), CNI_COMMAND: 'UPDATE' }, addNetConf());
    expect(r.json).toEqual(errorOf(CNI_ERROR.invalidEnv));
    expect((r.json as { msg: string }).msg).toContain('CNI_COMMAND is "UPDATE"');
  });

  it.each(['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'])(
    'fails with 4 naming %s when it is missing',
    async name => {
      const env: Record<string, string | undefined> = { ...baseEnv('ADD'), [name]: undefined };
      const r = await run(env, withAnnotations(single, '0.3.1'), noLookup);
      expect(r.code).toBe(1);
      expect(r.json).toEqual({
        cniVersion: '1.1.0',
        code: 4,
        msg: `${name} is not set (required for ADD)`,
      });
    },
  );

  it.each([
    ['K8S_POD_NAMESPACE=team-a', 'CNI_ARGS lacks K8S_POD_NAME'],
    ['K8S_POD_NAME=web-0', 'CNI_ARGS lacks K8S_POD_NAMESPACE'],
    ['K8S_POD_NAMESPACE=team-a;garbage', 'CNI_ARGS has a malformed pair "garbage"'],
    ['K8S_POD_NAMESPACE=Team_A;K8S_POD_NAME=web-0', 'not a namespace name'],
    ['K8S_POD_NAMESPACE=a;K8S_POD_NAME=../../x', 'not a pod name'],
  ])('fails with 4 on CNI_ARGS %s', async (args, text) => {
    const r = await run({ ...baseEnv('ADD'), CNI_ARGS: args }, addNetConf(), noLookup);
    expect(r.json).toEqual(errorOf(CNI_ERROR.invalidEnv));
    expect((r.json as { msg: string }).msg).toContain(text);
  });

  it('fails with 6 when stdin is not JSON', async () => {
    const r = await run(baseEnv('ADD'), '{"cniVersion": ', noLookup);
    expect(r.code).toBe(1);
    const err = r.json as Record<string, unknown>;
    expect(err.code).toBe(6);
    expect(err.msg).toBe('the network configuration on stdin is not valid JSON');
    expect(typeof err.details).toBe('string');
  });

  it('fails with 6 when stdin is JSON but not an object', async () => {
    const r = await run(baseEnv('ADD'), '[1,2]', noLookup);
    expect(r.json).toEqual({
      cniVersion: '1.1.0',
      code: 6,
      msg: 'the network configuration on stdin is not a JSON object',
    });
  });

  it('fails with 1 on an unsupported cniVersion', async () => {
    const r = await run(baseEnv('ADD'), withAnnotations(single, '0.2.0'), noLookup);
    expect(r.json).toEqual({
      cniVersion: '1.1.0',
      code: 1,
      msg: 'incompatible CNI version "0.2.0"',
      details:
        'podlease supports 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0; set "cniVersion" in the network configuration to one of them',
    });
  });

  it('fails with 7 listing every invalid field, in the caller’s version', async () => {
    const conf = withAnnotations(single, '0.4.0') as Record<string, unknown>;
    conf.name = '';
    conf.ipam = {
      type: 'podlease',
      kubeconfig: 42,
      routes: [{ dst: 'nope' }, { dst: '10.0.0.0/8', gw: 'x' }, { dst: '10.0.0.0/8', mtu: -1 }],
      dns: { nameservers: ['not-an-ip'], search: 'x' },
    };
    const r = await run(baseEnv('ADD'), conf, noLookup);
    expect(r.code).toBe(1);
    expect(r.json).toEqual({
      cniVersion: '0.4.0',
      code: 7,
      msg: 'invalid network configuration',
      details: [
        '"name" is missing',
        'ipam.kubeconfig is not a non-empty string (a file path)',
        'ipam.routes[0].dst "nope" is not a CIDR',
        'ipam.routes[1].gw "x" is not an IP address',
        'ipam.routes[2].mtu -1 is not a non-negative integer',
        'ipam.dns.nameservers has "not-an-ip", not an IP address',
        'ipam.dns.search is not a list of strings',
      ].join('; '),
    });
  });

  it('fails with 7 when ipam is missing or runtimeConfig annotations are not strings', async () => {
    const conf = addNetConf() as Record<string, unknown>;
    delete conf.ipam;
    conf.runtimeConfig = { [ANN]: { a: 1 } };
    const r = await run(baseEnv('ADD'), conf, noLookup);
    expect((r.json as { details: string }).details).toBe(
      '"ipam" is missing or not an object; ipam.type is missing; ' +
        'runtimeConfig["io.kubernetes.cri.pod-annotations"] is not a map of strings',
    );
  });
});

describe('DEL', () => {
  it('succeeds with no output, twice', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await run(baseEnv('DEL'), addNetConf(), noLookup);
      expect(r).toEqual({ code: 0, stdout: '', stderr: '', json: undefined });
    }
  });

  it('succeeds without CNI_NETNS (the netns may be gone)', async () => {
    const r = await run({ ...baseEnv('DEL'), CNI_NETNS: undefined }, addNetConf(), noLookup);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
  });

  it('succeeds even on a config it cannot read, logging why on stderr', async () => {
    const r = await run({ CNI_COMMAND: 'DEL' }, 'garbage', noLookup);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('podlease-cni DEL: ignoring');
  });
});

describe('CHECK', () => {
  const checkConf = (prevIps: unknown[], version = '1.1.0'): FixtureNetConf => {
    const conf = withAnnotations(dual, version);
    conf.prevResult = { cniVersion: version, interfaces: [{ name: 'eth0' }], ips: prevIps };
    return conf;
  };

  it('succeeds silently when the pod still carries the addresses of prevResult', async () => {
    const r = await run(
      baseEnv('CHECK'),
      checkConf([
        { address: '10.250.7.10/24', gateway: '10.250.7.1', interface: 0 },
        { address: 'fd00:250:7:0::a/64', gateway: 'fd00:250:7::1', interface: 0 },
      ]),
      noLookup,
    );
    expect(r).toEqual({ code: 0, stdout: '', stderr: '', json: undefined });
  });

  it('checks through the pod lookup too', async () => {
    const conf = addNetConf();
    conf.prevResult = { cniVersion: '1.1.0', ips: [{ address: '10.250.7.10/24' }] };
    const lookup = fakeLookup();
    const r = await run(baseEnv('CHECK'), conf, lookup.deps);
    expect(r.code).toBe(0);
    expect(lookup.calls).toHaveLength(1);
  });

  it('fails with 103 when the address differs', async () => {
    const r = await run(baseEnv('CHECK'), checkConf([{ address: '10.250.7.99/24' }]), noLookup);
    expect(r.code).toBe(1);
    expect(r.json).toEqual({
      cniVersion: '1.1.0',
      code: 103,
      msg: 'pod team-a/web-0 now carries 10.250.7.10/24, fd00:250:7::a/64, but the container was set up with 10.250.7.99/24',
      details: 'the podlease annotations changed after ADD; delete the pod so it is set up again',
    });
  });

  it('fails with 7 without prevResult', async () => {
    const r = await run(baseEnv('CHECK'), withAnnotations(single), noLookup);
    expect(r.json).toEqual(errorOf(CNI_ERROR.invalidConfig));
  });

  it('fails with 1 for a cniVersion before 0.4.0', async () => {
    const r = await run(baseEnv('CHECK'), checkConf([], '0.3.1'), noLookup);
    expect(r.json).toEqual({
      cniVersion: '0.3.1',
      code: 1,
      msg: 'config version 0.3.1 does not allow CHECK',
      details: 'CHECK needs cniVersion 0.4.0 or later',
    });
  });

  it('fails with 4 without CNI_NETNS', async () => {
    const r = await run({ ...baseEnv('CHECK'), CNI_NETNS: '' }, checkConf([]), noLookup);
    expect(r.json).toEqual({
      cniVersion: '1.1.0',
      code: 4,
      msg: 'CNI_NETNS is not set (required for CHECK)',
    });
  });
});

describe('STATUS', () => {
  it('succeeds silently when the probe succeeds, and probes with the ipam config', async () => {
    const seen: unknown[] = [];
    const r = await run({ CNI_COMMAND: 'STATUS' }, addNetConf(), {
      probeApiServer: ipam => {
        seen.push(ipam.kubeconfig);
        return Promise.resolve();
      },
    });
    expect(r).toEqual({ code: 0, stdout: '', stderr: '', json: undefined });
    expect(seen).toEqual(['/etc/cni/net.d/podlease/kubeconfig']);
  });

  it('answers 50 when the API server cannot be reached', async () => {
    const r = await run({ CNI_COMMAND: 'STATUS' }, addNetConf(), {
      probeApiServer: () =>
        Promise.reject(
          new CniError(CNI_ERROR.notAvailable, 'the API server cannot be reached', 'ECONNREFUSED'),
        ),
    });
    expect(r.code).toBe(1);
    expect(r.json).toEqual({
      cniVersion: '1.1.0',
      code: 50,
      msg: 'the API server cannot be reached',
      details: 'ECONNREFUSED',
    });
  });

  it('succeeds without a kubeconfig (nothing to probe)', async () => {
    const conf = addNetConf();
    conf.ipam = { type: 'podlease' };
    const r = await run({ CNI_COMMAND: 'STATUS' }, conf);
    expect(r.code).toBe(0);
  });

  it('fails with 1 for a cniVersion before 1.1.0', async () => {
    const conf = addNetConf();
    conf.cniVersion = '1.0.0';
    const r = await run({ CNI_COMMAND: 'STATUS' }, conf, noLookup);
    expect(r.json).toEqual({
      cniVersion: '1.0.0',
      code: 1,
      msg: 'config version 1.0.0 does not allow STATUS',
      details: 'STATUS needs cniVersion 1.1.0 or later',
    });
  });

  it('fails with 6 on bad stdin', async () => {
    const r = await run({ CNI_COMMAND: 'STATUS' }, 'x', noLookup);
    expect(r.json).toEqual(errorOf(CNI_ERROR.decodeFailure));
  });
});

describe('GC', () => {
  it('succeeds silently (nothing to collect locally)', async () => {
    const conf = addNetConf() as Record<string, unknown>;
    conf['cni.dev/valid-attachments'] = [{ containerID: 'c0ffee', ifname: 'eth0' }];
    const r = await run({ CNI_COMMAND: 'GC' }, conf, noLookup);
    expect(r).toEqual({ code: 0, stdout: '', stderr: '', json: undefined });
  });

  it('fails with 1 for a cniVersion before 1.1.0', async () => {
    const conf = addNetConf();
    conf.cniVersion = '0.4.0';
    const r = await run({ CNI_COMMAND: 'GC' }, conf, noLookup);
    expect(r.json).toEqual(errorOf(CNI_ERROR.incompatibleVersion, '0.4.0'));
  });

  it('fails with 7 on an invalid config', async () => {
    const r = await run({ CNI_COMMAND: 'GC' }, { cniVersion: '1.1.0' }, noLookup);
    expect(r.json).toEqual(errorOf(CNI_ERROR.invalidConfig));
  });
});

describe('fixtures', () => {
  it('hands out a fresh copy per call', () => {
    const a = pod();
    a.metadata.name = 'changed';
    expect(pod().metadata.name).toBe('web-0');
  });
});

describe('messages quote annotation values short', () => {
  const long = (c: string): string => c.repeat(1_000_000);
  const cases: [string, Record<string, string>][] = [
    ['ip', { 'podlease.io/ip': long('x'), 'podlease.io/cidr': '10.250.7.0/24' }],
    ['cidr', { 'podlease.io/ip': '10.250.7.10', 'podlease.io/cidr': long('c') }],
    [
      'ip list',
      { 'podlease.io/ip': `10.250.7.10,${long('1')}`, 'podlease.io/cidr': '10.250.7.0/24' },
    ],
    ['gateway', { ...single, 'podlease.io/gateway': long('g') }],
  ];
  for (const [what, annotations] of cases) {
    it(`answers 101 with a short message for a 1 MB ${what}`, async () => {
      const r = await run(baseEnv('ADD'), withAnnotations(annotations), noLookup);
      expect(r.json).toEqual(errorOf(CNI_ERROR.badAnnotation));
      expect(r.stdout.length).toBeLessThan(400);
      expect(r.stdout).toContain('more characters)');
    });
  }
});
