/**
 * The address lists of `podlease.io/static-ip` and `podlease.io/ip-list`, parsed in linear time
 * with a bounded number of entries. The bound is checked on the raw value (its length, then its
 * commas) before anything is split or parsed, so an oversized annotation costs one scan and is
 * denied with the limit named, instead of holding the event loop (and every other admission).
 */
import { formatIp, parseIp, type Family, type Ip } from '../ip/address.js';
import { ADDRESS_ENTRY_MAX_CHARS } from '../pool/annotations.js';
import { quote } from '../text/quote.js';
import { BadAnnotationError } from './errors.js';

/** One entry of a list: the parsed address and its canonical text. */
export interface ListedAddress {
  readonly ip: Ip;
  readonly text: string;
}

export interface ListLimit {
  readonly maxEntries: number;
  /** Why the limit is what it is, for the denial, e.g. "one address per family". */
  readonly why: string;
}

/** The longest address text, `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`. */
const MAX_ADDRESS_CHARS = 45;

/** Number of comma-separated entries, counted without splitting. */
const countEntries = (value: string): number => {
  let entries = 1;
  for (let i = value.indexOf(','); i !== -1; i = value.indexOf(',', i + 1)) entries++;
  return entries;
};

/** Throws BadAnnotationError, naming the limit, when `value` holds too many entries. */
export const checkListSize = (key: string, value: string, limit: ListLimit): void => {
  const { maxEntries, why } = limit;
  const maxChars = maxEntries * ADDRESS_ENTRY_MAX_CHARS;
  if (value.length > maxChars) {
    throw new BadAnnotationError(
      key,
      `${key} is ${value.length} characters long; it takes at most ${maxEntries} ` +
        `address${maxEntries === 1 ? '' : 'es'} (${why}), at most ${maxChars} characters`,
    );
  }
  const entries = countEntries(value);
  if (entries > maxEntries) {
    throw new BadAnnotationError(
      key,
      `${key} has ${entries} entries; it takes at most ${maxEntries} (${why})`,
    );
  }
};

/**
 * The addresses of an annotation, canonical, grouped by family in the order listed. Throws
 * BadAnnotationError for too many entries, an entry that is not an address, or a duplicate.
 * Linear in the length of the value.
 */
export const parseAddressList = (
  key: string,
  value: string,
  limit: ListLimit,
): Map<Family, ListedAddress[]> => {
  checkListSize(key, value, limit);
  const out = new Map<Family, ListedAddress[]>();
  const seen = new Set<string>();
  for (const raw of value.split(',')) {
    const entry = raw.trim();
    const ip = entry.length > MAX_ADDRESS_CHARS ? undefined : parseIp(entry);
    if (ip === undefined) {
      throw new BadAnnotationError(key, `${key}: ${quote(entry)} is not an IP address`);
    }
    const text = formatIp(ip);
    if (seen.has(text)) throw new BadAnnotationError(key, `${key}: ${text} is listed twice`);
    seen.add(text);
    const list = out.get(ip.family);
    if (list === undefined) out.set(ip.family, [{ ip, text }]);
    else list.push({ ip, text });
  }
  return out;
};
