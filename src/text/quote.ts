/**
 * Quoting user input in messages. A denial or a CNI error names the value it refused, but never
 * the whole of it: an annotation or a field can be megabytes long, and the message goes back to
 * the user, into the API server's events and into logs. No imports: the CNI plugin uses this on
 * its start-up path.
 */

/** Most characters of user input a message quotes. */
export const QUOTE_MAX_CHARS = 64;

/** Where to cut `text` to keep at most `max` characters, never halving a surrogate pair. */
const cutAt = (text: string, max: number): number => {
  const last = text.charCodeAt(max - 1);
  return last >= 0xd800 && last <= 0xdbff ? max - 1 : max;
};

/**
 * `text` as a JSON string literal, cut to `max` characters with the rest counted:
 * `"10.0.0.1,10.0.0.2,…"…(999936 more characters)`.
 */
export const quote = (text: string, max: number = QUOTE_MAX_CHARS): string => {
  if (text.length <= max) return JSON.stringify(text);
  const cut = cutAt(text, max);
  return `${JSON.stringify(text.slice(0, cut))}…(${text.length - cut} more characters)`;
};

/** `text` unquoted, cut to `max` characters with the rest counted (for text that is a message). */
export const clip = (text: string, max: number = QUOTE_MAX_CHARS): string => {
  if (text.length <= max) return text;
  const cut = cutAt(text, max);
  return `${text.slice(0, cut)}…(${text.length - cut} more characters)`;
};

/** A JSON value as JSON text, cut like `quote` (a string is quoted, anything else written as JSON). */
export const quoteJson = (v: unknown, max: number = QUOTE_MAX_CHARS): string => {
  if (typeof v === 'string') return quote(v, max);
  // JSON.stringify answers undefined for undefined, functions and symbols, despite its type.
  const json = JSON.stringify(v) as string | undefined;
  return clip(json ?? String(v), max);
};

/** What a value of any type is, for "must be a string, got …" messages: `number 42`, `an object`. */
export const describeValue = (v: unknown): string => {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') return `the string ${quote(v)}`;
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  return typeof v;
};
