/**
 * The little address handling the CNI plugin needs — parse, canonical text, prefix membership —
 * with no imports at all. `node:net` would do it, but loading it pulls ~30 built-in modules
 * (streams, sockets, tty) into a process whose whole life is a few milliseconds; src/ip sits on
 * `ip-address`, which the ADD path does not need either.
 *
 * The names differ from src/ip/address.ts on purpose, because the behaviour does: `parseAddr`
 * takes the text exactly as given (no trimming), and `canonicalAddrOrInput` hands back its input
 * when it is not an address, where src/ip's `canonicalIp` answers undefined. Server-side code
 * uses src/ip; only the CNI plugin uses this module.
 */
export type Family = 4 | 6;

export interface Addr {
  readonly family: Family;
  readonly value: bigint;
}

export interface Prefix {
  readonly family: Family;
  /** The prefix's first address (host bits cleared). */
  readonly network: bigint;
  readonly bits: number;
}

const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]\\d|\\d)';
const IPV4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);
const HEXTET = /^[0-9a-fA-F]{1,4}$/;

const parseV4 = (text: string): bigint | undefined => {
  const m = IPV4.exec(text);
  if (m === null) return undefined;
  return m.slice(1).reduce((acc, o) => (acc << 8n) | BigInt(o), 0n);
};

/** Hextets of one side of `::` (an IPv4 tail counts as two); undefined when malformed. */
const hextets = (side: string, allowV4Tail: boolean): bigint[] | undefined => {
  if (side === '') return [];
  const parts = side.split(':');
  const out: bigint[] = [];
  for (const [i, part] of parts.entries()) {
    if (allowV4Tail && i === parts.length - 1 && part.includes('.')) {
      const v4 = parseV4(part);
      if (v4 === undefined) return undefined;
      out.push(v4 >> 16n, v4 & 0xffffn);
    } else if (HEXTET.test(part)) {
      out.push(BigInt(`0x${part}`));
    } else {
      return undefined;
    }
  }
  return out;
};

const parseV6 = (text: string): bigint | undefined => {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const [left = '', right] = halves;
  const head = hextets(left, right === undefined);
  const tail = right === undefined ? [] : hextets(right, true);
  if (head === undefined || tail === undefined) return undefined;
  const count = head.length + tail.length;
  if (right === undefined ? count !== 8 : count > 7) return undefined;
  const groups = [...head, ...Array<bigint>(8 - count).fill(0n), ...tail];
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
};

/** Parses dotted-quad IPv4 or RFC 4291 IPv6 text (no zone); undefined when it is neither. */
export const parseAddr = (text: string): Addr | undefined => {
  const v4 = parseV4(text);
  if (v4 !== undefined) return { family: 4, value: v4 };
  const v6 = text.includes(':') ? parseV6(text) : undefined;
  return v6 === undefined ? undefined : { family: 6, value: v6 };
};

/** 4, 6, or 0 when `text` is not an address (the shape of `net.isIP`). */
export const addrFamily = (text: string): Family | 0 => parseAddr(text)?.family ?? 0;

/** RFC 5952 text: lower case, no leading zeros, the first longest run of ≥ 2 zero groups as `::`. */
export const formatAddr = (a: Addr): string => {
  if (a.family === 4) {
    return [24n, 16n, 8n, 0n].map(s => String((a.value >> s) & 0xffn)).join('.');
  }
  const groups = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map(s => (a.value >> s) & 0xffffn);
  let best = { start: -1, len: 1 };
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0n) j++;
    if (j - i > best.len) best = { start: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map(g => g.toString(16));
  if (best.start < 0) return hex.join(':');
  const left = hex.slice(0, best.start).join(':');
  const right = hex.slice(best.start + best.len).join(':');
  return `${left}::${right}`;
};

/** Canonical text of an address; the input unchanged when it is not one (for messages, comparisons). */
export const canonicalAddrOrInput = (text: string): string => {
  const a = parseAddr(text);
  return a === undefined ? text : formatAddr(a);
};

const width = (family: Family): number => (family === 4 ? 32 : 128);

/** Parses `address/bits`; undefined when malformed or `bits` is out of range. */
export const parsePrefix = (text: string): Prefix | undefined => {
  const [ip = '', bits, extra] = text.split('/');
  const a = parseAddr(ip);
  if (a === undefined || bits === undefined || extra !== undefined || !/^\d{1,3}$/.test(bits)) {
    return undefined;
  }
  const n = Number(bits);
  const w = width(a.family);
  if (n > w) return undefined;
  const hostBits = BigInt(w - n);
  return { family: a.family, network: (a.value >> hostBits) << hostBits, bits: n };
};

/** Whether `a` lies inside `p` (same family, same leading `bits`). */
export const prefixContains = (p: Prefix, a: Addr): boolean => {
  if (p.family !== a.family) return false;
  const hostBits = BigInt(width(p.family) - p.bits);
  return (a.value >> hostBits) << hostBits === p.network;
};
