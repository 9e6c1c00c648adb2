// Where the control-plane binaries live (a cache outside the repository, keyed by the Kubernetes
// version in versions.env) and how to build them (build.sh; instant when cached).
import { execFile } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLUSTER_DIR = path.dirname(fileURLToPath(import.meta.url));
export const BUILD_SCRIPT = path.join(CLUSTER_DIR, 'build.sh');
export const BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager'] as const;
export type Binary = (typeof BINARIES)[number];

export interface ControlPlaneVersions {
  readonly kubernetes: string;
  readonly etcd: string;
}

export function controlPlaneVersions(): ControlPlaneVersions {
  const env = readFileSync(path.join(CLUSTER_DIR, 'versions.env'), 'utf8');
  const value = (key: string): string => {
    const match = new RegExp(`^${key}=(\\S+)$`, 'm').exec(env);
    if (!match?.[1]) throw new Error(`versions.env: ${key} missing`);
    return match[1];
  };
  return { kubernetes: value('K8S_VERSION'), etcd: value('ETCD_VERSION') };
}

export function cacheRoot(): string {
  return process.env.PODLEASE_CACHE_DIR ?? '/var/cache/podlease';
}

/** `<cache>/k8s-<version>/bin`, whether or not it has been built. */
export function controlPlaneBinDir(): string {
  return path.join(cacheRoot(), `k8s-${controlPlaneVersions().kubernetes}`, 'bin');
}

/** Names of the binaries not yet in the cache. */
export function missingBinaries(binDir = controlPlaneBinDir()): Binary[] {
  return BINARIES.filter(b => {
    try {
      accessSync(path.join(binDir, b), constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
}

/**
 * Runs build.sh (a no-op when the binaries are cached; a long Go build otherwise) and resolves to
 * the bin directory. `onOutput` receives build.sh's progress lines.
 */
export async function buildControlPlane(onOutput?: (line: string) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'bash',
      [BUILD_SCRIPT],
      { maxBuffer: 64 * 1024 * 1024, env: process.env },
      (err, stdout, stderr) => {
        if (err) {
          const tail = stderr.trimEnd().split('\n').slice(-40).join('\n');
          reject(new Error(`${BUILD_SCRIPT} failed: ${err.message}\n${tail}`, { cause: err }));
          return;
        }
        const lines = stdout.trim().split('\n');
        resolve(lines[lines.length - 1] ?? controlPlaneBinDir());
      },
    );
    child.stderr?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().trimEnd().split('\n')) onOutput?.(line);
    });
  });
}
