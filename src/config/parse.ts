/**
 * Small pure parsers for configuration values. Each returns undefined on a malformed,
 * NaN or out-of-range value, so `loadConfig` can report every problem at once; valid values come
 * back canonicalised (durations in ms, sizes in bytes).
 */

const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;

/**
 * Go-style durations as the API server writes them (`10s`, `1m30s`, `1.5h`, `250ms`) to whole
 * milliseconds. A bare number is read as seconds. Zero is allowed; negative values are not.
 */
export const parseDuration = (text: string): number | undefined => {
  const s = text.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1_000);
  if (s === '') return undefined;
  let total = 0;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < s.length) {
    const at = DURATION_PART.lastIndex;
    const m = DURATION_PART.exec(s);
    if (m === null || m.index !== at) return undefined;
    const unit = DURATION_UNITS_MS[m[2] ?? ''];
    if (unit === undefined) return undefined;
    total += Number(m[1]) * unit;
  }
  return Number.isFinite(total) ? Math.round(total) : undefined;
};

const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1_000,
  kb: 1_000,
  ki: 1_024,
  kib: 1_024,
  m: 1_000_000,
  mb: 1_000_000,
  mi: 1_048_576,
  mib: 1_048_576,
};

/** Byte sizes: `512`, `64kb`, `8Mi`, `3MB` (case-insensitive). */
export const parseSize = (text: string): number | undefined => {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(text.trim());
  if (m === null) return undefined;
  const unit = SIZE_UNITS[(m[2] ?? '').toLowerCase()];
  if (unit === undefined) return undefined;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
};

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** `host:port`, `[v6]:port` or `:port` (all addresses). Port 0 asks for an ephemeral port. */
export const parseHostPort = (text: string): HostPort | undefined => {
  const s = text.trim();
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(s);
  if (m === null) return undefined;
  const port = Number(m[3]);
  if (port > 65_535) return undefined;
  const host = m[1] ?? (m[2] === '' || m[2] === undefined ? '0.0.0.0' : m[2]);
  return { host, port };
};

/** `true`/`false`, `1`/`0`, `yes`/`no` (case-insensitive). */
export const parseBoolean = (text: string): boolean | undefined => {
  const s = text.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(s)) return true;
  if (['false', '0', 'no', 'off'].includes(s)) return false;
  return undefined;
};

/** `http://h:p`/`https://…` for display, brackets around IPv6 hosts. */
export const formatHostPort = (hp: HostPort): string =>
  hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
