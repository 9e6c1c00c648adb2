/**
 * Asks the API server whether a pod exists: the webhook's check before it replaces a pending
 * lease made for the same pod name (a duplicate CREATE of a running pod must not take its
 * address). One GET, bounded by the admission's remaining budget; 404 is "absent".
 */
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { PodLookupError } from '../webhook/errors.js';
import type { PodPresence } from '../webhook/admit.js';
import { isNotFound, withTimeout } from './api.js';

export const apiPodPresence = (kc: KubeConfig): PodPresence => {
  const api = kc.makeApiClient(CoreV1Api);
  return {
    async exists(namespace, name, timeoutMs) {
      try {
        await withTimeout(api.readNamespacedPod({ name, namespace }), timeoutMs, 'get pod');
        return true;
      } catch (err) {
        if (isNotFound(err)) return false;
        const why = err instanceof Error ? err.message : String(err);
        throw new PodLookupError(
          `cannot tell whether pod ${namespace}/${name} exists (${why.slice(0, 200)}), so its ` +
            'earlier pending lease is not replaced; the API server retries the pod; if this ' +
            'persists, check that podlease may get pods',
        );
      }
    },
  };
};
