/**
 * Namespace annotations (`podlease.io/pool` on a namespace), injected into the webhook. The
 * implementation backed by an informer lives in k8s/namespace-cache.ts and is wired in bin/;
 * without an API server there are no namespace annotations.
 */
export interface NamespaceLookup {
  /** The namespace's annotations, or undefined when unknown. Synchronous: read from a cache. */
  annotations(namespace: string): Readonly<Record<string, string>> | undefined;
}

export const NO_NAMESPACES: NamespaceLookup = { annotations: () => undefined };

/** A fixed table, for tests and the CLI. */
export const staticNamespaces = (
  table: Readonly<Record<string, Readonly<Record<string, string>>>>,
): NamespaceLookup => ({ annotations: ns => table[ns] });
