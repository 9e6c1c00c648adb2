// Bounded polling for e2e tests.

/**
 * Polls `probe` every `intervalMs` until it returns a value other than undefined, and fails with
 * `what` and the last probe error after `timeoutMs`.
 */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (${last})` : ''}`,
      );
    }
    await new Promise(resolve => setTimeout(resolve, intervalMs));
  }
}
