/**
 * Asks the API server whether a pod exists: the webhook's check before it replaces a pending
 * lease made for the same pod name (a duplicate CREATE of a running pod must not take its
 * address). One GET, bounded by the admission's remaining budget; 404 is "absent".
 */
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { PodLookupError } from '../webhook/errors.js';
import type { PodPresence } from '../webhook/admit.js';

const statusOf = (err: unknown): number | undefined => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
};

export const apiPodPresence = (kc: KubeConfig): PodPresence => {
  const api = kc.makeApiClient(CoreV1Api);
  return {
    async exists(namespace, name, timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`no answer within ${timeoutMs} ms`));
        }, timeoutMs);
      });
      try {
        await Promise.race([api.readNamespacedPod({ name, namespace }), timeout]);
        return true;
      } catch (err) {
        if (statusOf(err) === 404) return false;
        const why = err instanceof Error ? err.message : String(err);
        throw new PodLookupError(
          `cannot tell whether pod ${namespace}/${name} exists (${why.slice(0, 200)}), so its ` +
            'earlier pending lease is not replaced; the API server retries the pod; if this ' +
            'persists, check that podlease may get pods',
        );
      } finally {
        clearTimeout(timer);
      }
    },
  };
};
