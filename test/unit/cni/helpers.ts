/** In-process driver for runPlugin: captures stdout/stderr and parses the answer. */
import type { IpamConfig, CniPodRef } from '../../../src/cni/args.js';
import type { PodInfo } from '../../../src/cni/pod.js';
import { runPlugin, type PluginDeps } from '../../../src/cni/plugin.js';
import { cniArgs, pod } from '../../fixtures/cni/loader.js';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, undefined when stdout is empty. */
  json: unknown;
}

export const baseEnv = (command: string): Record<string, string> => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: 'c0ffee',
  CNI_NETNS: '/var/run/netns/test',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
  CNI_ARGS: cniArgs(),
});

export const run = async (
  env: Record<string, string | undefined>,
  stdin: unknown,
  deps: PluginDeps = {},
): Promise<Run> => {
  let stdout = '';
  let stderr = '';
  const code = await runPlugin(
    {
      env,
      stdin: typeof stdin === 'string' ? stdin : JSON.stringify(stdin),
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
    },
    deps,
  );
  return { code, stdout, stderr, json: stdout === '' ? undefined : JSON.parse(stdout) };
};

export interface Lookup {
  deps: PluginDeps;
  calls: { pod: CniPodRef; ipam: IpamConfig }[];
}

/** A pod lookup answering `info` (default: the fixture pod) and recording its calls. */
export const fakeLookup = (info?: Partial<PodInfo>): Lookup => {
  const fixture = pod();
  const calls: Lookup['calls'] = [];
  return {
    calls,
    deps: {
      lookupPod: (p, ipam) => {
        calls.push({ pod: p, ipam });
        return Promise.resolve({
          uid: info && 'uid' in info ? info.uid : fixture.metadata.uid,
          annotations: info?.annotations ?? fixture.metadata.annotations,
        });
      },
      probeApiServer: () => Promise.reject(new Error('probe not expected')),
    },
  };
};

/** A lookup that must not be called (ADD with runtime-passed annotations). */
export const noLookup: PluginDeps = {
  lookupPod: () => Promise.reject(new Error('lookup not expected')),
  probeApiServer: () => Promise.reject(new Error('probe not expected')),
};
