/** Small helpers shared by the API server clients of src/k8s (namespace cache, pod presence). */

/** The API server answered 404 (client-node puts the HTTP status in `code`). */
export const isNotFound = (err: unknown): boolean =>
  (err as { code?: unknown } | null)?.code === 404;

/** Resolves as `promise` does, or rejects after `ms` with `no answer to <what> within <ms> ms`. */
export const withTimeout = async <T>(promise: Promise<T>, ms: number, what: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`no answer to ${what} within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
};
