/**
 * Namespace annotations (`podlease.io/pool` on a namespace), injected into the webhook. The
 * implementation backed by an informer lives in k8s/namespace-cache.ts and is wired in bin/;
 * without an API server there are no namespace annotations.
 */
export interface NamespaceLookup {
  /**
   * The namespace's annotations, or undefined when it has none or does not exist. Answered from
   * a cache, or looked up live on a miss; rejects when the namespace cannot be read (the
   * admission is then denied with 503: guessing "no annotations" would give the pod the default
   * pool for good).
   */
  annotations(namespace: string): Promise<Readonly<Record<string, string>> | undefined>;
  /** False until the cache has synced: `/readyz` answers 503 until then. */
  ready(): boolean;
}

export const NO_NAMESPACES: NamespaceLookup = {
  annotations: () => Promise.resolve(undefined),
  ready: () => true,
};

/** A fixed table, for tests and the CLI. */
export const staticNamespaces = (
  table: Readonly<Record<string, Readonly<Record<string, string>>>>,
): NamespaceLookup => ({
  annotations: ns => Promise.resolve(table[ns]),
  ready: () => true,
});
