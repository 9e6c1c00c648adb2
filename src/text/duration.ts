/**
 * Durations in messages, written so `--reuse-cooldown` and the other duration flags read them
 * back (config/parse.ts `parseDuration`): `0s`, `250ms`, `1.5s`, `60s`. No imports: pool core
 * uses it.
 */
export const formatDuration = (ms: number): string =>
  ms > 0 && ms < 1_000 ? `${ms}ms` : `${Math.round(ms) / 1_000}s`;
