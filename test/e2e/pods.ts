// Small helpers shared by the e2e tests: pod readiness, addresses inside a netns, subnets.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import type * as k8s from '@kubernetes/client-node';

const execFileAsync = promisify(execFile);

export const OWNED = {
  ip: 'podlease.io/ip',
  cidr: 'podlease.io/cidr',
  gateway: 'podlease.io/gateway',
  lease: 'podlease.io/lease',
  pool: 'podlease.io/pool',
} as const;

export function isReady(pod: k8s.V1Pod): boolean {
  return (
    pod.status?.phase === 'Running' &&
    pod.metadata?.deletionTimestamp === undefined &&
    (pod.status.conditions ?? []).some(c => c.type === 'Ready' && c.status === 'True')
  );
}

export function annotation(pod: k8s.V1Pod, key: string): string | undefined {
  return pod.metadata?.annotations?.[key];
}

/** The pod's `podlease.io/*` annotations. */
export function podleaseAnnotations(pod: k8s.V1Pod): Record<string, string> {
  return Object.fromEntries(
    Object.entries(pod.metadata?.annotations ?? {}).filter(([k]) => k.startsWith('podlease.io/')),
  );
}

function toInt(ip: string): number {
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

/** IPv4 only: is `ip` inside `cidr`? */
export function inSubnet(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip)) return false;
  const mask = 2 ** 32 - 2 ** (32 - Number(bits));
  return (toInt(ip) & mask) >>> 0 === (toInt(base ?? '') & mask) >>> 0;
}

interface IpAddr {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

/** IPv4 addresses on eth0 inside a network namespace, as `a.b.c.d/len`. */
export async function eth0Inet(netns: string): Promise<string[]> {
  const { stdout } = await execFileAsync('ip', ['-j', '-n', netns, 'addr', 'show', 'eth0']);
  const addrs = JSON.parse(stdout) as IpAddr[];
  return (addrs[0]?.addr_info ?? [])
    .filter(a => a.family === 'inet')
    .map(a => `${a.local}/${a.prefixlen}`);
}

/** `ip netns exec <netns> ping -c1 -W2 <ip>`: exit status and output. */
export async function pingFrom(
  netns: string,
  ip: string,
): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout } = await execFileAsync(
      'ip',
      ['netns', 'exec', netns, 'ping', '-c1', '-W2', ip],
      { timeout: 10_000 },
    );
    return { ok: true, output: stdout };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` || String(err) };
  }
}
