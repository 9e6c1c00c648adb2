/**
 * Fresh reads of the API server before the controller frees an address: a GET of one pod, or a
 * list of one namespace's pods (metadata only). Both are quorum reads (no resourceVersion), so
 * they see every pod persisted before the call, unlike the watch cache.
 */
import {
  ACCEPT_METADATA,
  ACCEPT_METADATA_LIST,
  isApiNotFound,
  type KubeClient,
} from '../k8s/client.js';
import type { KubeObject } from '../k8s/informer.js';
import type { LeaseRecord } from '../pool/store.js';
import { podLeases } from './pod-info.js';

const READ_TIMEOUT_MS = 10_000;
const PAGE = 500;

/** True when the pod is gone for good: 404, or a pod of that name with another UID. */
export const confirmGone = async (
  client: KubeClient,
  pod: { namespace: string; name: string; uid?: string | undefined },
): Promise<boolean> => {
  if (pod.name === '' || pod.name.endsWith('*')) return false;
  try {
    const obj = await client.request<KubeObject>(
      `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${encodeURIComponent(pod.name)}`,
      { accept: ACCEPT_METADATA, timeoutMs: READ_TIMEOUT_MS },
    );
    return pod.uid !== undefined && obj.metadata?.uid !== pod.uid;
  } catch (err) {
    if (isApiNotFound(err)) return true;
    throw err;
  }
};

interface PodList {
  readonly items?: readonly KubeObject[];
  readonly metadata?: { readonly continue?: string };
}

const carriedIds = (items: readonly KubeObject[]): string[] =>
  items.flatMap(obj => podLeases(obj.metadata?.annotations ?? {}).map(l => l.id));

/** The lease ids among `leases` that some pod of their namespace carries, read afresh. */
export const freshPodsCarrying = async (
  client: KubeClient,
  leases: readonly LeaseRecord[],
): Promise<Set<string>> => {
  const wanted = new Set(leases.map(l => l.id));
  const present = new Set<string>();
  for (const ns of new Set(leases.map(l => l.namespace))) {
    let cont = '';
    do {
      const q = new URLSearchParams({
        limit: String(PAGE),
        ...(cont === '' ? {} : { continue: cont }),
      });
      const page = await client.request<PodList>(
        `/api/v1/namespaces/${encodeURIComponent(ns)}/pods?${q.toString()}`,
        { accept: ACCEPT_METADATA_LIST, timeoutMs: READ_TIMEOUT_MS },
      );
      carriedIds(page.items ?? [])
        .filter(id => wanted.has(id))
        .forEach(id => present.add(id));
      cont = page.metadata?.continue ?? '';
    } while (cont !== '');
  }
  return present;
};
